"""Package compatibility: which operating systems and CPU architectures fit.

A package lists OS names and architectures; an empty list means any. The
computer's inventory fields `os` and `architecture` are matched like this:

- OS: an entry matches when it occurs, case-insensitively, in the inventory
  `os` text ("debian" matches "Debian GNU/Linux") or equals the computer's OS
  family. The family is `windows` when `os` contains "windows", `macos` when
  it contains "macos", "mac os" or "os x", and `linux` for any other
  non-empty value, because Linux agents report the distribution name (such
  as "Ubuntu") rather than the word Linux.
- Architecture: names are compared after mapping aliases, so `x86_64`,
  `amd64` and `x64` are one architecture, as are `arm64` and `aarch64`, and
  `x86`, `i386` and `i686`.

A computer that has not reported the field yet counts as compatible: a
pre-registered computer would otherwise fail every job before its first
inventory.
"""

from __future__ import annotations

import re

OS_FAMILIES = ("windows", "macos", "linux")

ARCH_ALIASES = {
    "amd64": "x86_64",
    "x64": "x86_64",
    "x86-64": "x86_64",
    "aarch64": "arm64",
    "i386": "x86",
    "i686": "x86",
}

_ENTRY = re.compile(r"^[a-z0-9][a-z0-9 ._/-]*$")


def parse_list(text: str, option: str) -> str:
    """Normalize 'Windows, linux' to 'windows,linux'; raise ValueError if invalid."""
    entries = [part.strip().lower() for part in text.split(",") if part.strip()]
    for entry in entries:
        if not _ENTRY.match(entry):
            raise ValueError(
                f"invalid {option} entry {entry!r}: use letters, digits, "
                "spaces, '.', '_', '/' or '-', separated by commas"
            )
    return ",".join(dict.fromkeys(entries))


def os_family(os_text: str) -> str:
    """Return the OS family of an inventory `os` value (see the module text)."""
    text = os_text.lower()
    if "windows" in text:
        return "windows"
    if "macos" in text or "mac os" in text or "os x" in text:
        return "macos"
    # NOTE: every other OS counts as Linux; a BSD computer needs an entry
    # that occurs in its `os` text, such as "freebsd".
    return "linux"


def normalize_arch(name: str) -> str:
    name = name.strip().lower()
    return ARCH_ALIASES.get(name, name)


def os_matches(compatible_os: str, os_value: object) -> bool:
    """Return whether a package's OS list admits a computer's `os` value."""
    if not compatible_os or os_value is None or str(os_value).strip() == "":
        return True
    text = str(os_value).lower()
    family = os_family(text)
    return any(entry == family or entry in text for entry in compatible_os.split(","))


def arch_matches(compatible_arch: str, arch_value: object) -> bool:
    """Return whether a package's architecture list admits a computer's value."""
    if not compatible_arch or arch_value is None or str(arch_value).strip() == "":
        return True
    computer_arch = normalize_arch(str(arch_value))
    return any(
        normalize_arch(entry) == computer_arch for entry in compatible_arch.split(",")
    )


def incompatibility(package: dict[str, object], computer: dict[str, object]) -> str:
    """Return why a package does not fit a computer, or '' when it fits."""
    compatible_os = str(package.get("compatible_os") or "")
    compatible_arch = str(package.get("compatible_arch") or "")
    if not os_matches(compatible_os, computer.get("os")):
        return f"package runs on {compatible_os}, computer has OS {computer.get('os')}"
    if not arch_matches(compatible_arch, computer.get("architecture")):
        return (
            f"package runs on {compatible_arch}, computer has architecture "
            f"{computer.get('architecture')}"
        )
    return ""
