"""Error message helpers."""

from __future__ import annotations

import pytest

from ocoserver.errors import preview

PREVIEW_CASES = {
    "short-text": ("lab-pc-01", "'lab-pc-01'"),
    "long-text": ("L" * 300, "'" + "L" * 59 + "... (300 characters)"),
    "long-list": (
        list(range(100)),
        "[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 1... (100 items)",
    ),
    "long-bytes": (b"\xff" * 40, "b'" + "\\xff" * 14 + "\\x... (40 bytes)"),
}


@pytest.mark.parametrize(("value", "expected"), PREVIEW_CASES.values(), ids=PREVIEW_CASES)
def test_preview_counts_value_length(value, expected):
    assert preview(value) == expected
