"""Who is asking: the client's address, believing forwarded headers only from our own proxies."""

from __future__ import annotations

import ipaddress
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network

from starlette.requests import Request

from app.config import Settings

IPAddress = IPv4Address | IPv6Address
IPNetwork = IPv4Network | IPv6Network


def parse_ip(value: str | None) -> IPAddress | None:
    """Return the address in `value`, or None when it is not one (a name, garbage, too long)."""
    if not value or len(value) > 64:
        return None
    try:
        address = ipaddress.ip_address(value.strip())
    except ValueError:
        return None
    if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped  # ::ffff:1.2.3.4 is 1.2.3.4 for limits and records
    return address


def _trusted(address: IPAddress, networks: list[IPNetwork]) -> bool:
    return any(address in network for network in networks)


def client_address(request: Request, settings: Settings) -> IPAddress | None:
    """Return the client's address: the peer, or what trusted proxies say they forwarded.

    X-Forwarded-For is read from the right: each hop appends the address it saw, so the
    first address that is not one of our proxies is the client; anything left of it is
    whatever the client chose to send.
    """
    peer = parse_ip(request.client.host if request.client else None)
    networks = settings.trusted_proxies
    if peer is None or not _trusted(peer, networks):
        return peer
    client = peer
    forwarded = ",".join(request.headers.getlist("x-forwarded-for"))
    for hop in reversed([h for h in forwarded.split(",") if h.strip()]):
        address = parse_ip(hop)
        if address is None:
            break  # garbage: keep the last address a trusted hop vouched for
        client = address
        if not _trusted(address, networks):
            break
    return client


def client_ip(request: Request, settings: Settings) -> str | None:
    """Return the client's address as canonical text (what rate limits and consent use)."""
    address = client_address(request, settings)
    return None if address is None else str(address)


def client_scheme(request: Request, settings: Settings) -> str:
    """Return "https" or "http": X-Forwarded-Proto when a trusted proxy sent it, else the URL's."""
    peer = parse_ip(request.client.host if request.client else None)
    if peer is not None and _trusted(peer, settings.trusted_proxies):
        proto = request.headers.get("x-forwarded-proto", "").split(",")[-1].strip().lower()
        if proto in ("http", "https"):
            return proto
    return request.url.scheme
