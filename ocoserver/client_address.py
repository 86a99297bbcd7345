"""The agent's address: the TCP peer, or X-Forwarded-For behind a trusted proxy.

A reverse proxy appends the address it received a request from to
X-Forwarded-For, and a client can put anything to the left of that. So the
header is read only when the direct peer is one of `server.trusted_proxies`,
and then from the right: the first address that is not itself a trusted
proxy is the client. Without trusted proxies the header is ignored, so an
agent cannot choose the address that job IP ranges are checked against.
"""

from __future__ import annotations

import functools
import ipaddress
import logging

from aiohttp import hdrs, web

from ocoserver.appkeys import STATE
from ocoserver.logtext import quote

log = logging.getLogger("ocoserver.agent")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


# The request key under which client_address keeps its result, so that a
# misconfigured proxy is logged once per request, not once per call.
_ADDRESS_KEY = web.RequestKey("client_address", str)


def client_address(request: web.Request) -> str:
    """Return the client's IP address as text, or '' when the peer is unknown."""
    address: str | None = request.get(_ADDRESS_KEY)
    if address is None:
        address = _resolve(request)
        request[_ADDRESS_KEY] = address
    return address


def _resolve(request: web.Request) -> str:
    peer = request.remote or ""
    trusted = trusted_networks(request.app[STATE].config.server.trusted_proxies)
    if not trusted or not _is_trusted(parse_address(peer), trusted):
        return peer
    forwarded = request.headers.getall(hdrs.X_FORWARDED_FOR, [])
    entries = [part.strip() for line in forwarded for part in line.split(",")]
    for entry in reversed(entries):
        address = parse_address(entry)
        if address is None:
            # Only a trusted proxy writes right of the client's entry, so an
            # unreadable entry here means a misconfigured proxy.
            log.warning(
                "X-Forwarded-For entry %s from proxy %s is not an IP address; "
                "using the proxy's address",
                quote(entry),
                peer,
            )
            return peer
        if not _is_trusted(address, trusted):
            return str(address)
    # Every hop is a trusted proxy: the left-most one sent the request.
    first = parse_address(entries[0]) if entries else None
    return str(first) if first is not None else peer


@functools.lru_cache(maxsize=8)
def trusted_networks(entries: tuple[str, ...]) -> tuple[IPNetwork, ...]:
    """Parse `server.trusted_proxies`, which config.py has already validated."""
    return tuple(ipaddress.ip_network(entry.strip()) for entry in entries)


def parse_address(text: str) -> IPAddress | None:
    """Parse an address as proxies write it; None when it is not an IP address.

    Accepts '192.0.2.7', '2001:db8::1', '[2001:db8::1]:443' and '192.0.2.7:80'.
    An IPv4-mapped IPv6 address ('::ffff:192.0.2.7') becomes its IPv4 form, so
    it matches IPv4 ranges.
    """
    text = text.strip()
    if text.startswith("["):
        text = text[1:].partition("]")[0]
    elif text.count(":") == 1:
        text = text.partition(":")[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return address.ipv4_mapped
    return address


def _is_trusted(address: IPAddress | None, trusted: tuple[IPNetwork, ...]) -> bool:
    if address is None:
        return False
    return any(address in network for network in trusted)
