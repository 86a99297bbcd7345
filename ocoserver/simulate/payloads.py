"""Request data of simulated agents, shaped like captured agent requests.

Field names and JSON types follow what OCO agent 1.1.6 (generation 1) and
1.2.0 (generation 2) send on Linux: `addr` for network addresses, numbers
and strings mixed, `services: null`, `battery_*: false` without a battery.
Each computer gets its own addresses and MAC; the software list is shared
between computers so that thousands of agents need little memory.
"""

from __future__ import annotations

import uuid
from typing import Any

AGENT_VERSIONS = {1: "1.1.6", 2: "1.2.0"}

# Namespace for the uid of a simulated computer: uuid5(namespace, hostname)
# gives a stable uid, so a second run speaks for the same computers.
UID_NAMESPACE = uuid.UUID("9a4f3c52-7c1e-4b8e-9f1d-5a6b7c8d9e0f")

LOGINS = (
    ("labuser", "Lab User,Room 101", "pts/0", "2024-05-01 08:00:00"),
    ("labuser", "Lab User,Room 101", "tty1", "2024-05-02 09:30:15"),
    ("ghost", "", "pts/1", "2024-05-03 12:00:00"),
)


def computer_uid(hostname: str) -> str:
    return str(uuid.uuid5(UID_NAMESPACE, hostname))


def networks(index: int) -> list[dict[str, Any]]:
    """Return the network list of computer number `index` (loopback-free, like eth0)."""
    high, low = divmod(index, 256)
    mac = f"02:00:00:{high >> 8:02x}:{high & 0xFF:02x}:{low:02x}"
    return [
        {
            "addr": f"10.{high >> 8}.{high & 0xFF}.{low}",
            "netmask": "255.0.0.0",
            "broadcast": "10.255.255.255",
            "mac": mac,
            "interface": "eth0",
        },
        {
            "addr": f"fd00::{index:x}",
            "netmask": "ffff:ffff:ffff:ffff::/64",
            "broadcast": "-",
            "mac": mac,
            "interface": "eth0",
        },
    ]


def software_list(count: int) -> list[dict[str, str]]:
    """Return `count` Debian-style software entries with distinct names."""
    return [
        {
            "name": f"sim-package-{number:05d}",
            "version": f"{number % 7}.{number % 13}.{number % 5}-{number % 3 + 1}",
            "description": "" if number % 4 else f"simulated package number {number}",
        }
        for number in range(count)
    ]


def hello_data(generation: int, index: int, uptime: float) -> dict[str, Any]:
    data: dict[str, Any] = {
        "agent_version": AGENT_VERSIONS[generation],
        "networks": networks(index),
        "services": None,
        "uptime": uptime,
    }
    if generation == 2:
        data.update(battery_level=False, battery_status=False, force_update=False)
    return data


def inventory_data(
    generation: int,
    hostname: str,
    index: int,
    uptime: float,
    software: list[dict[str, str]],
    logins_since: str,
) -> dict[str, Any]:
    """Return the `data` of an `oco.agent.update`, with logins newer than given."""
    data: dict[str, Any] = {
        "hostname": hostname,
        "agent_version": AGENT_VERSIONS[generation],
        "os": "Debian GNU/Linux",
        "os_version": "12",
        "os_license": "-",
        "os_language": "-",
        "kernel_version": "6.1.0-28-amd64",
        "architecture": "x86_64",
        "cpu": "Simulated CPU",
        "ram": 8 * 1024**3,
        "gpu": "",
        "serial": f"SIM{index:08d}",
        "manufacturer": "ocoserver",
        "model": "simulated computer",
        "bios_version": "",
        "uptime": uptime,
        "boot_type": "UEFI",
        "secure_boot": "0",
        "domain": "sim.example",
        "networks": networks(index),
        "screens": [],
        "printers": [],
        "partitions": [_partition()],
        "software": software,
        "logins": _logins(generation, logins_since),
    }
    if generation == 2:
        data.update(users=_users(), devices=[], battery_level=False,
                    battery_status=False)
    return data


def _partition() -> dict[str, Any]:
    return {
        "device": "/dev/sda1", "mountpoint": "/", "filesystem": "ext4",
        "size": 108944293888, "free": 84520304640, "name": "", "uuid": "",
        "encrypted": False,
    }  # fmt: skip


def _logins(generation: int, since: str) -> list[dict[str, Any]]:
    logins = []
    for username, display_name, console, timestamp in LOGINS:
        if timestamp <= since:
            continue
        login: dict[str, Any] = {
            "display_name": display_name, "username": username,
            "console": console, "timestamp": timestamp,
        }  # fmt: skip
        if generation == 2:
            login["guid"] = None
        logins.append(login)
    return logins


def _users() -> list[dict[str, Any]]:
    return [
        {"username": "root", "display_name": "root", "uid": 0, "gid": 0,
         "home": "/root", "shell": "/bin/bash", "disabled": False},
        {"username": "labuser", "display_name": "Lab User", "uid": 1000,
         "gid": 1000, "home": "/home/labuser", "shell": "/bin/bash",
         "disabled": False},
    ]  # fmt: skip


def job_state_data(
    job_id: int | str,
    state: int,
    return_code: int | None = None,
    message: str = "",
    progress: float | None = None,
) -> dict[str, Any]:
    data: dict[str, Any] = {
        "job-id": job_id, "state": state, "return-code": return_code,
        "message": message,
    }  # fmt: skip
    if progress is not None:
        data["download-progress"] = progress
    return data
