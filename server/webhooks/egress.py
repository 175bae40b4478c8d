"""Where Flint may send webhooks (and, later, app hook calls): outbound-request safety.

In production a URL must be https and every address its host resolves to must be public: no
loopback, private (RFC 1918, fc00::/7), link-local (169.254/16: cloud metadata), multicast,
reserved or unspecified address. The check runs when an endpoint is created and again at every
delivery, and the delivery then connects to the very address it checked (with the URL's host as
Host and TLS server name), so a DNS answer that changes in between (rebinding) cannot redirect it.
Development allows loopback (API.md 11), for local receivers and tests.
"""
from __future__ import annotations

import asyncio
import ipaddress

import httpx
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from ..errors import invalid

MAX_URL = 2048
DNS_TIMEOUT = 3.0  # seconds for a lookup at creation; a delivery's lookup counts against its own timeout


class DestinationRefused(Exception):
    """The destination is not allowed; the message says why (stored as the attempt's error)."""


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str  # as written in the URL (Host header, TLS server name)
    port: int
    address: str  # the checked IP to connect to


def check_url_syntax(url: str, *, production: bool, param: str = "url") -> None:
    if len(url) > MAX_URL:
        raise invalid("url_invalid", f"URLs are at most {MAX_URL} characters.", param)
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise invalid("url_invalid", "This is not a valid URL.", param) from None
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise invalid("url_invalid", "Webhook URLs are absolute http(s) URLs.", param)
    if production and parts.scheme != "https":
        raise invalid("url_insecure", "Webhook URLs must use https.", param)
    if parts.username or parts.password:
        raise invalid("url_invalid", "Webhook URLs cannot carry credentials; sign-in happens by signature.", param)
    if parts.fragment:
        raise invalid("url_invalid", "Webhook URLs cannot have a fragment.", param)
    if port == 0:
        raise invalid("url_invalid", "This is not a valid URL.", param)
    try:
        parts.hostname.encode("idna")
    except UnicodeError:
        raise invalid("url_invalid", "The URL's host is not a valid host name.", param) from None


def _allowed(address: ipaddress.IPv4Address | ipaddress.IPv6Address, allow_loopback: bool) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped  # ::ffff:127.0.0.1 is 127.0.0.1
    if address.is_loopback:
        return allow_loopback
    return address.is_global and not address.is_multicast


async def resolve(url: str, *, allow_loopback: bool) -> Target:
    """The checked target of ``url``: raises DestinationRefused unless every address is allowed."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
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
    return Target(parts.scheme, host, port, str(addresses[0]))


async def check_destination(url: str, *, production: bool, param: str = "url") -> None:
    """At creation: the syntax, and (in production) where the host resolves now: 400 when not allowed."""
    check_url_syntax(url, production=production, param=param)
    if not production:
        # Development takes loopback and names that do not resolve yet; a literal private address
        # is refused at once. Every delivery is checked when it is sent, in either mode.
        try:
            literal = ipaddress.ip_address(urlsplit(url).hostname or "")
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
