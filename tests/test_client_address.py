"""Reading agent addresses as proxies write them."""

from __future__ import annotations

import pytest

from ocoserver.client_address import parse_address

ADDRESSES = {
    "ipv4": ("192.0.2.7", "192.0.2.7"),
    "ipv4-port": ("192.0.2.7:8080", "192.0.2.7"),
    "ipv6": ("2001:db8::1", "2001:db8::1"),
    "ipv6-bracket-port": ("[2001:db8::1]:443", "2001:db8::1"),
    "ipv4-mapped": ("::ffff:192.0.2.7", "192.0.2.7"),
    "spaces": ("  10.0.0.1 ", "10.0.0.1"),
}


@pytest.mark.parametrize(("text", "expected"), ADDRESSES.values(), ids=ADDRESSES.keys())
def test_parse_address_forms(text, expected):
    assert str(parse_address(text)) == expected


@pytest.mark.parametrize("text", ["unknown", "", "10.0.0.256", "_hidden"])
def test_parse_address_rejects(text):
    assert parse_address(text) is None
