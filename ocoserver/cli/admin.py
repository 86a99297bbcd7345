"""Administration commands (filled in per command group)."""

from __future__ import annotations

import argparse
from typing import Any


def add_commands(commands: Any) -> None:
    return None
