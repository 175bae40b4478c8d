"""Where Flint may send webhooks and app hook calls: outbound-request safety.

In production a URL must be https and every address its host resolves to must be public: no
loopback, private (RFC 1918, fc00::/7), link-local (169.254/16: cloud metadata), multicast,
reserved or unspecified address. The check runs when an endpoint is created and again at every
delivery, and the delivery then connects to the very address it checked (with the URL's host as
Host and TLS server name), so a DNS answer that changes in between (rebinding) cannot redirect it.
Development allows loopback (docs/api.md 11), for local receivers and tests.

An IPv6 address that carries an IPv4 address (mapped, compatible, NAT64, 6to4) reaches that IPv4
address, so it is judged by it (docs/api.md 13); IPv6 ranges that are not globally routable are refused
by name below, whatever the Python version's own table says.
"""
from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass

import httpx

from flint import urls
from flint.errors import FlintError, invalid

DNS_TIMEOUT = 3.0  # seconds for a lookup at creation; a delivery's lookup counts against its own timeout


class DestinationRefused(Exception):
    """The destination is not allowed; the message says why (stored as the attempt's error)."""


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str  # the URL's host as parsed (an xn-- name for an internationalised one)
    port: int
    address: str  # the checked IP to connect to


def check_url_syntax(url: str, *, production: bool, param: str = "url") -> None:
    """The one URL parser's rules (server.urls: 400 url_invalid, url_insecure for http in
    production), and no fragment: a receiver never sees one."""
    if urls.parse_url(url, param, production=production).fragment:
        raise invalid("url_invalid", "Webhook URLs cannot have a fragment.", param)


_V6 = ipaddress.IPv6Network
_IPV4_MAPPED = _V6("::ffff:0:0/96")  # RFC 4291 2.5.5.2: the host's own IPv4 stack
_IPV4_COMPATIBLE = _V6("::/96")  # RFC 4291 2.5.5.1 (deprecated): ::a.b.c.d
_NAT64 = _V6("64:ff9b::/96")  # RFC 6052: a NAT64 gateway forwards to the IPv4 address in the last 32 bits
_SIXTOFOUR = _V6("2002::/16")  # RFC 3056: a 6to4 relay forwards to the IPv4 address in bits 16-47
_NEVER = (
    _V6("64:ff9b:1::/48"),  # RFC 8215: local-use NAT64, translated to whatever the local network chose
    _V6("::ffff:0:0:0/96"),  # RFC 2765: IPv4-translated addresses, stateless translation on some path
    _V6("2001::/32"),  # RFC 4380: Teredo, a tunnel whose far end is an IPv4 host (RFC 6890: not global)
    _V6("2001::/23"),  # RFC 2928 / 6890: IETF protocol assignments (benchmarking, ORCHID, ...)
    _V6("2001:db8::/32"),  # RFC 3849: documentation
    _V6("3fff::/20"),  # RFC 9637: documentation
    _V6("100::/64"),  # RFC 6666: discard-only
    _V6("5f00::/16"),  # RFC 9602: SRv6 segment identifiers
    _V6("fc00::/7"),  # RFC 4193: unique local
    _V6("fe80::/10"),  # RFC 4291: link-local
    _V6("fec0::/10"),  # RFC 3879: site-local (deprecated, still routed inside some networks)
    _V6("ff00::/8"),  # RFC 4291: multicast
)


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if address in _NAT64 or (address in _IPV4_COMPATIBLE and int(address) > 1):  # not :: or ::1
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address in _SIXTOFOUR:
        return address.sixtofour
    return None


def _allowed(address: ipaddress.IPv4Address | ipaddress.IPv6Address, allow_loopback: bool) -> bool:
    if isinstance(address, ipaddress.IPv6Address):
        if address in _IPV4_MAPPED:
            address = address.ipv4_mapped  # ::ffff:127.0.0.1 is this host's 127.0.0.1
        elif (embedded := _embedded_ipv4(address)) is not None:
            # Reached through a translator or relay: only a global IPv4 address will do, never a
            # loopback one, even in development (it would be the translator's, not this host's).
            return _allowed(embedded, allow_loopback=False)
        elif any(address in network for network in _NEVER):
            return False
    if address.is_loopback:
        return allow_loopback
    return address.is_global and not address.is_multicast


async def resolve(url: str, *, allow_loopback: bool) -> Target:
    """The checked target of ``url``: raises DestinationRefused unless every address is allowed."""
    try:
        # Parsed again at every call: a row written before today's URL rules is held to them too.
        parsed = urls.parse_url(url, "url")
    except FlintError as bad:
        raise DestinationRefused(f"destination_not_allowed: {bad.detail}") from None
    host, port = parsed.host, parsed.effective_port
    try:
        literal = ipaddress.ip_address(host)
        addresses = [literal]
    except ValueError:
        loop = asyncio.get_running_loop()
        try:
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except socket.gaierror as error:
            raise DestinationRefused(f"dns_error: {error.strerror or error}") from None
        except UnicodeError:
            raise DestinationRefused("dns_error: not a valid host name") from None
        addresses = [ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos]
    if not addresses:
        raise DestinationRefused("dns_error: no address")
    # Every answer must be allowed: a host that resolves to one public and one private address
    # is a rebinding attempt waiting for its moment.
    refused = [str(a) for a in addresses if not _allowed(a, allow_loopback)]
    if refused:
        raise DestinationRefused(f"destination_not_allowed: {host} resolves to {refused[0]}")
    return Target(parsed.scheme, host, port, str(addresses[0]))


async def check_destination(url: str, *, production: bool, param: str = "url") -> None:
    """At creation: the syntax, and (in production) where the host resolves now: 400 when not allowed."""
    check_url_syntax(url, production=production, param=param)
    if not production:
        # Development takes loopback and names that do not resolve yet; a literal private address
        # is refused at once. Every delivery is checked when it is sent, in either mode.
        try:
            literal = ipaddress.ip_address(urls.parse_url(url, param).host)
        except ValueError:
            return
        if not _allowed(literal, allow_loopback=True):
            raise invalid("url_not_allowed", f"Webhooks cannot go to private, loopback or link-local addresses "
                          f"({literal}).", param)
        return
    try:
        async with asyncio.timeout(DNS_TIMEOUT):
            await resolve(url, allow_loopback=False)
    except TimeoutError:
        raise invalid("url_unresolvable", "The URL's host did not resolve in time.", param) from None
    except DestinationRefused as refused:
        code, _, detail = str(refused).partition(": ")
        if code == "dns_error":
            raise invalid("url_unresolvable", f"The URL's host does not resolve ({detail}).", param) from None
        raise invalid("url_not_allowed", f"Webhooks cannot go to private, loopback or link-local addresses ({detail}).",
                      param) from None


def pinned_request(client: httpx.AsyncClient, url: str, target: Target, body: bytes, headers: dict[str, str],
                   user_agent: str) -> httpx.Request:
    """A POST to the address ``resolve`` checked, not to a fresh DNS answer; the URL's host stays the
    Host header and, over TLS, the server name the certificate must match."""
    original = httpx.URL(url)
    host_header = original.host + (f":{original.port}" if original.port else "")
    return client.build_request(
        "POST", original.copy_with(host=target.address), content=body,
        headers={**headers, "content-type": "application/json", "user-agent": user_agent, "host": host_header},
        extensions={"sni_hostname": original.host} if original.scheme == "https" else {},
    )
