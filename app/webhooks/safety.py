"""Where a webhook may point: http(s) URLs whose host resolves only to public addresses.

A URL is checked when it is registered and again before every POST; the POST then connects to
the very address that was checked (the name goes only into Host and SNI), so a DNS answer that
changes between the check and the connection (rebinding) cannot reach an internal service.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

from app.errors import InvalidInput

URL_MAX = 2000
# The setting a refusal of a private address names, unless its caller has its own (feeds, the
# link check pass theirs to check_addresses).
WEBHOOK_PRIVATE_SETTING = "MORNINGPOST_WEBHOOK_ALLOW_PRIVATE"
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
# What a request line may carry as is (h11 refuses anything else): printable ASCII but space.
# Everything else in a path is sent percent-encoded (as UTF-8), as browsers and httpx do;
# "%" is kept, so escapes already in the URL are not escaped twice.
_PATH_SAFE = "".join(chr(c) for c in range(0x21, 0x7F))
# A host as RFC 3986 writes one (a name, an IPv4 or a bracketless IPv6 literal with its zone).
_HOST_CHARS = re.compile(r"[A-Za-z0-9._~%:!$&'()*+,;=-]+")


@dataclass(frozen=True)
class Target:
    """A checked webhook URL, split into what the connection needs."""

    scheme: str
    host: str  # the name (or literal) as written, without brackets
    port: int
    path: str  # path and query, never empty

    @property
    def host_header(self) -> str:
        """Return the Host header value (port only when not the scheme's default)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.scheme == "https" else 80
        return host if self.port == default else f"{host}:{self.port}"


def parse_target(url: str) -> Target:
    """Split a webhook URL or raise InvalidInput (scheme, host, credentials, length)."""
    if not isinstance(url, str) or not url.strip() or len(url) > URL_MAX:
        raise InvalidInput(f"The URL must be http(s) and at most {URL_MAX} characters long.")
    if any(ch in url for ch in "\r\n\t "):
        raise InvalidInput("The URL cannot contain spaces or line breaks.")
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in url):
        raise InvalidInput("The URL cannot contain control characters.")
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https"):
        raise InvalidInput("The URL must start with http:// or https://.")
    if parts.username or parts.password:
        raise InvalidInput("The URL cannot carry a user name or password.")
    try:
        port = parts.port
    except ValueError:
        raise InvalidInput("The URL's port is not a number from 1 to 65535.") from None
    host = _ascii_host((parts.hostname or "").rstrip("."))
    if not host:
        raise InvalidInput("The URL has no host name.")
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    # The Host header, SNI and the request line are ASCII on the wire: a non-ASCII name goes
    # as its IDNA A-label, a non-ASCII path percent-encoded. Left as they were, h11 raised
    # UnicodeEncodeError mid-request, which no caller expected (a webhook batch, a feed poll).
    path = quote(path, safe=_PATH_SAFE)
    return Target(parts.scheme, host, port or (443 if parts.scheme == "https" else 80), path)


def redirect_location(value: str) -> str:
    """Return a Location header (read as latin-1) with each byte over 127 percent-encoded.

    Servers send raw UTF-8 (or other) bytes in Location; they are passed on as the very bytes
    they were, escaped, which is what browsers and curl request.
    """
    return quote(value.strip().encode("latin-1", "replace"), safe=_PATH_SAFE)


def _ascii_host(host: str) -> str:
    """Return the host as ASCII (an international name as its IDNA A-label) or InvalidInput."""
    try:
        ascii_host = host if host.isascii() else host.encode("idna").decode("ascii")
    except UnicodeError:
        ascii_host = ""
    if host and not _HOST_CHARS.fullmatch(ascii_host):
        raise InvalidInput("The URL's host is not a valid domain name.")
    return ascii_host


# Ranges the standard library still calls global but that no webhook should reach: deprecated
# site-local IPv6, the newer IPv6 documentation block, the 6to4 relay anycast, and the NAT64
# local-use prefix (a site's own translator, to whatever IPv4 it chooses).
_NOT_PUBLIC = tuple(
    ipaddress.ip_network(n)
    for n in ("fec0::/10", "3fff::/20", "192.88.99.0/24", "64:ff9b:1::/48", "5f00::/8")
)
# The NAT64 well-known prefix (RFC 6052) carries an IPv4 address in its last 32 bits; an
# IPv6-only host reaches the IPv4 world through it, so it is judged by the address inside.
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


def _embedded(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """Return the IPv4 address an IPv6 one wraps (mapped, NAT64, 6to4, Teredo), if any."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return ip.sixtofour or (ip.teredo[1] if ip.teredo else None)


def forbidden(ip: IPAddress) -> bool:
    """Tell whether an address is anything but plainly public (private, special, deprecated).

    An IPv6 address wrapping an IPv4 one is refused when the inner one is; ::ffff:8.8.8.8 and
    64:ff9b::8.8.8.8 are judged as 8.8.8.8.
    """
    if isinstance(ip, ipaddress.IPv6Address):
        inner = _embedded(ip)
        if inner is not None:
            if forbidden(inner):
                return True
            if ip.ipv4_mapped is not None or ip in _NAT64:
                return False  # the connection goes to the IPv4 address, which is public
        if ip.is_site_local:
            return True
    return (
        ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
        or not ip.is_global  # also shared (100.64/10), benchmarking and documentation ranges
        or any(ip in net for net in _NOT_PUBLIC if net.version == ip.version)
    )


def check_addresses(
    host: str,
    addresses: list[str],
    allow_private: bool,
    setting: str = WEBHOOK_PRIVATE_SETTING,
) -> list[str]:
    """Return the addresses to connect to; refuse (InvalidInput) if any is forbidden.

    setting: the one that allows private addresses for this caller, named in the refusal.
    """
    if not addresses:
        raise InvalidInput(f"The host {host!r} does not resolve to any address.")
    if allow_private:
        return addresses
    for raw in addresses:
        ip = ipaddress.ip_address(raw.split("%", 1)[0])
        if forbidden(ip):
            # Any forbidden answer refuses the name: a mixed answer is a rebinding tool.
            raise InvalidInput(
                f"The host {host!r} resolves to {ip}, a private, loopback, link-local "
                f"or otherwise non-public address; set {setting}=true to allow it."
            )
    return addresses


def resolve(target: Target) -> list[str]:
    """Resolve the host to its addresses (blocking; literals need no DNS)."""
    try:
        infos = socket.getaddrinfo(target.host, target.port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError, ValueError) as exc:
        raise InvalidInput(f"The host {target.host!r} does not resolve: {exc}") from None
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def check_url(url: str, allow_private: bool) -> Target:
    """Check a URL at registration: syntax, then (unless private ones are allowed) its addresses."""
    target = parse_target(url)
    if not allow_private:
        check_addresses(target.host, resolve(target), allow_private)
    return target
