"""Counters and latencies of a simulated fleet, with the status and summary."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any


def percentile(sorted_values: list[float], fraction: float) -> float:
    """Return the nearest-rank percentile of an ascending list (0.0 when empty)."""
    if not sorted_values:
        return 0.0
    rank = max(0, min(len(sorted_values) - 1, round(fraction * len(sorted_values)) - 1))
    return sorted_values[rank]


@dataclass
class Stats:
    started: float = field(default_factory=time.monotonic)
    latencies: dict[str, list[float]] = field(default_factory=dict)
    errors: Counter[str] = field(default_factory=Counter)
    inventories: int = 0
    jobs_succeeded: int = 0
    jobs_failed: int = 0
    bytes_downloaded: int = 0
    check_ins: int = 0

    def record(self, method: str, seconds: float) -> None:
        self.latencies.setdefault(method, []).append(seconds)

    @property
    def requests(self) -> int:
        return sum(len(values) for values in self.latencies.values())

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def status_line(self, agents: int) -> str:
        """Return the one-line live status."""
        elapsed = self.elapsed()
        hello = sorted(self.latencies.get("oco.agent.hello", []))
        return (
            f"{elapsed:6.1f}s agents {agents} requests {self.requests} "
            f"({self.requests / max(elapsed, 1e-9):.1f}/s) errors "
            f"{sum(self.errors.values())} inventories {self.inventories} jobs "
            f"{self.jobs_succeeded} ok {self.jobs_failed} failed, hello p50 "
            f"{percentile(hello, 0.5) * 1000:.1f} ms p99 "
            f"{percentile(hello, 0.99) * 1000:.1f} ms"
        )

    def summary(self) -> dict[str, Any]:
        """Return the end-of-run figures; latencies in milliseconds."""
        elapsed = self.elapsed()
        methods = {}
        for method, values in sorted(self.latencies.items()):
            ordered = sorted(values)
            methods[method] = {
                "requests": len(ordered),
                "p50_ms": round(percentile(ordered, 0.5) * 1000, 2),
                "p99_ms": round(percentile(ordered, 0.99) * 1000, 2),
            }
        return {
            "seconds": round(elapsed, 2),
            "requests": self.requests,
            "requests_per_second": round(self.requests / max(elapsed, 1e-9), 1),
            "check_ins": self.check_ins,
            "errors": dict(self.errors),
            "inventories": self.inventories,
            "jobs_succeeded": self.jobs_succeeded,
            "jobs_failed": self.jobs_failed,
            "bytes_downloaded": self.bytes_downloaded,
            "methods": methods,
        }


def format_summary(summary: dict[str, Any]) -> str:
    """Render a summary as aligned text lines."""
    errors = ", ".join(f"{kind} {count}" for kind, count in summary["errors"].items())
    lines = [
        f"ran {summary['seconds']} s: {summary['requests']} requests "
        f"({summary['requests_per_second']}/s), {summary['check_ins']} check-ins, "
        f"{summary['inventories']} inventories",
        f"jobs: {summary['jobs_succeeded']} succeeded, {summary['jobs_failed']} failed, "
        f"{summary['bytes_downloaded']} bytes downloaded",
        f"errors: {errors or 'none'}",
    ]
    for method, figures in summary["methods"].items():
        lines.append(
            f"  {method:28} {figures['requests']:8} requests  p50 "
            f"{figures['p50_ms']:8.2f} ms  p99 {figures['p99_ms']:8.2f} ms"
        )
    return "\n".join(lines)
