"""Render the results of bench/run.py as markdown into BENCHMARKS.md."""

from __future__ import annotations

from pathlib import Path
from typing import Any

START = "<!-- results start -->"
END = "<!-- results end -->"
MB = 1e6
# A load generator above this share of one core may have been the limit.
SATURATED = 0.9


def write(path: Path, results: dict[str, Any]) -> None:
    """Replace the text between the result markers of `path` (created if missing)."""
    block = f"{START}\n{render(results)}\n{END}"
    text = path.read_text("utf-8") if path.exists() else f"# Benchmarks\n\n{START}\n{END}\n"
    if START not in text or END not in text:
        text = text.rstrip("\n") + f"\n\n{START}\n{END}\n"
    before = text[: text.index(START)]
    after = text[text.index(END) + len(END) :]
    path.write_text(before + block + after, "utf-8")


def render(results: dict[str, Any]) -> str:
    sections = [
        _machine(results),
        _hello(results["hello"]),
        _scale(results["scale"]),
        _update(results["update"]),
        _simulator(results["simulator"]),
        _downloads(results["download"]),
        _targets(results),
    ]
    return "\n\n".join(sections)


def _machine(results: dict[str, Any]) -> str:
    m = results["machine"]
    return (
        f"### Run of {m['date']} ({results['mode']} mode, {results['wall_seconds']} s)\n\n"
        "| CPU | cores | Python | aiohttp | SQLite | wrk | nginx | load average at start |\n"
        "| --- | --- | --- | --- | --- | --- | --- | --- |\n"
        f"| {m['cpu']} | {m['cores']} | {m['python']} | {m['aiohttp']} | {m['sqlite']} "
        f"| {m['wrk']} | {m['nginx']} | {m['load_average']} |"
    )


def _cpu(share: float) -> str:
    return f"{share * 100:.0f} %"


def _limit(row: dict[str, Any]) -> str:
    """Name what most likely capped a load run, from the CPU shares."""
    if row["server_cpu"] >= SATURATED:
        return "server CPU"
    if row["client_cpu"] >= SATURATED:
        return "load generator CPU"
    cores_busy = row["server_cpu"] + row["client_cpu"] + row["other_cpu"]
    if cores_busy >= 2 * SATURATED:
        return f"all cores busy, {row['other_cpu']:.1f} of them with other processes"
    return "round trips, not CPU"


def _hello(rows: list[dict[str, Any]]) -> str:
    lines = [
        "### Check-ins: `oco.agent.hello`, generation 1, wrk",
        "",
        "| server | computers | connections | requests/s | p50 ms | p99 ms "
        "| share of bare | server CPU | wrk CPU | other CPU | server CPU µs/request "
        "| errors | limit |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        share = f"{row['share_of_bare']:.2f}" if "share_of_bare" in row else "1"
        lines.append(
            f"| {row['server']} | {row['computers'] or '-'} | {row['connections']} "
            f"| {row['rate']:.0f} | {row['p50_ms']:.2f} | {row['p99_ms']:.2f} | {share} "
            f"| {_cpu(row['server_cpu'])} | {_cpu(row['client_cpu'])} "
            f"| {_cpu(row['other_cpu'])} "
            f"| {row['server_cpu_us_per_request']:.0f} | {row['errors']} "
            f"| {_limit(row)} |"
        )
    return "\n".join(lines)


def _scale(rows: list[dict[str, Any]]) -> str:
    lines = [
        "### Scale: 100 against 10,000 registered computers (10 connections, "
        f"alternated {len(rows) // 2} times)",
        "",
        "| computers | requests/s | p99 ms | server CPU µs/request | other CPU |",
        "| --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        lines.append(
            f"| {row['computers']} | {row['rate']:.0f} | {row['p99_ms']:.2f} "
            f"| {row['server_cpu_us_per_request']:.0f} | {_cpu(row['other_cpu'])} |"
        )
    return "\n".join(lines)


def scale_ratio(rows: list[dict[str, Any]]) -> float:
    """Return CPU per request with 10,000 computers over that with 100 (means)."""
    def mean(count: int) -> float:
        values = [r["server_cpu_us_per_request"] for r in rows if r["computers"] == count]
        return sum(values) / len(values)

    return mean(10_000) / mean(100)


def _update(update: dict[str, Any]) -> str:
    hello = update["hello"]
    lines = [
        f"### Inventory: `oco.agent.update` with 2,000 software entries "
        f"({update['body_bytes'] / 1000:.0f} kB), sequential, 1,000 computers",
        "",
        "| request | count | mean ms | p50 ms | multiple of a hello (wall) "
        "| server CPU ms | multiple of a hello (CPU) |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, label in (("hello", "hello"), ("unchanged", "update, unchanged"),
                        ("first_upload", "update, first upload")):  # fmt: skip
        figures = update[name]
        lines.append(
            f"| {label} | {figures['requests']} | {figures['mean_ms']:.2f} "
            f"| {figures['p50_ms']:.2f} | {figures['mean_ms'] / hello['mean_ms']:.1f} "
            f"| {figures['server_cpu_ms']:.2f} "
            f"| {_ratio(figures['server_cpu_ms'], hello['server_cpu_ms'])} |"
        )
    return "\n".join(lines)


def _ratio(value: float, base: float) -> str:
    # Server CPU time is read in clock ticks (10 ms), so a tiny base is noise.
    return f"{value / base:.1f}" if base > 0 else "n/a"


def _simulator(run: dict[str, Any]) -> str:
    summary = run["summary"]
    hello = summary["methods"].get("oco.agent.hello", {"requests": 0, "p50_ms": 0,
                                                       "p99_ms": 0})  # fmt: skip
    errors = ", ".join(f"{k} {v}" for k, v in summary["errors"].items()) or "none"
    return (
        f"### Signed check-ins: {run['agents']} simulated generation 2 agents, "
        "no pause, 1,000 computers\n\n"
        "| hellos/s | p50 ms | p99 ms | server CPU | simulator CPU | errors |\n"
        "| --- | --- | --- | --- | --- | --- |\n"
        f"| {hello['requests'] / summary['seconds']:.0f} | {hello['p50_ms']:.2f} "
        f"| {hello['p99_ms']:.2f} | {_cpu(run['server_cpu'])} "
        f"| {_cpu(run['client_cpu'])} | {errors} |"
    )


def _downloads(download: dict[str, Any]) -> str:
    lines = [
        "### Downloads of a 1 GiB package (generation 1 download, bench/fetch.py)",
        "",
        "| server | concurrent | MB/s | peak RSS MB | server CPU | client CPU | other CPU "
        "| errors | limit |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in download["rows"]:
        rss = f"{row['peak_rss_kib'] / 1024:.0f}" if "peak_rss_kib" in row else "-"
        server_cpu = _cpu(row["server_cpu"]) if row["server"] == "ocoserver" else "-"
        lines.append(
            f"| {row['server']} | {row['connections']} "
            f"| {row['bytes'] / row['seconds'] / MB:.0f} | {rss} | {server_cpu} "
            f"| {_cpu(row['client_cpu'])} | {_cpu(row['other_cpu'])} | {row['errors']} "
            f"| {_limit(row)} |"
        )
    lines.append("")
    lines.append(
        f"ocoserver resident memory: {download['idle_rss_kib'] / 1024:.0f} MB idle "
        f"before the downloads, {download['hwm_kib'] / 1024:.0f} MB peak (VmHWM) "
        "over the process's life."
    )
    lines.append(
        "nginx runs as a master and worker processes whose CPU time this script "
        "does not read, so it is part of the other CPU column."
    )
    if not download["nginx"]:
        lines.append("nginx is not installed, so its column is missing.")
    return "\n".join(lines)


def _targets(results: dict[str, Any]) -> str:
    rows = [_target_row(*target) for target in _target_values(results)]
    return "\n".join(
        ["### Targets", "", "| target | measured | met |", "| --- | --- | --- |", *rows]
    )


def _target_row(name: str, measured: str, met: bool | None) -> str:
    if met is None:
        status = "n/a"
    else:
        status = "yes" if met else "**no**"
    return f"| {name} | {measured} | {status} |"


def _target_values(results: dict[str, Any]) -> list[tuple[str, str, bool | None]]:
    hello = {(r["computers"], r["connections"]): r for r in results["hello"]}
    share = hello[(1000, 100)]["share_of_bare"]
    p99 = hello[(1000, 100)]["p99_ms"]
    update = results["update"]
    unchanged = update["unchanged"]["mean_ms"] / update["hello"]["mean_ms"]
    first = update["first_upload"]["mean_ms"] / update["hello"]["mean_ms"]
    download = {(r["server"], r["connections"]): r for r in results["download"]["rows"]}
    peak_mb = download[("ocoserver", 50)]["peak_rss_kib"] / 1024
    nginx = download.get(("nginx", 50))
    ratio = scale_ratio(results["scale"])
    targets: list[tuple[str, str, bool | None]] = [
        ("hello rate >= 1/4 of bare aiohttp, 1,000 computers, 100 connections",
         f"{share:.2f} of bare", share >= 0.25),
        ("hello p99 < 50 ms at 100 connections, 1,000 computers",
         f"{p99:.1f} ms", p99 < 50),
        ("update, 2,000 entries unchanged <= 20 hellos", f"{unchanged:.1f} hellos",
         unchanged <= 20),
        ("update, 2,000 entries first upload <= 60 hellos", f"{first:.1f} hellos",
         first <= 60),
        ("50 concurrent 1 GiB downloads: RSS < 150 MB", f"{peak_mb:.0f} MB",
         peak_mb < 150),
        ("10,000 computers cost no more per request than 100",
         f"{ratio:.2f} × the CPU per request", ratio <= 1.0),
    ]  # fmt: skip
    if nginx is not None:
        ours = download[("ocoserver", 50)]
        throughput = (ours["bytes"] / ours["seconds"]) / (nginx["bytes"] / nginx["seconds"])
        targets.append(("50 concurrent downloads >= 80 % of nginx throughput",
                        f"{throughput * 100:.0f} %", throughput >= 0.8))  # fmt: skip
    else:
        targets.append(("50 concurrent downloads >= 80 % of nginx throughput",
                        "nginx missing", None))  # fmt: skip
    return targets
