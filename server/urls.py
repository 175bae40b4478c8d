"""URLs that merchants and apps give Flint (``success_url``, ``cancel_url``, ``webhook_url``,
``hook_url``, redirect URIs): one parser, so that every place that builds something from such a URL
(a Content-Security-Policy source, an origin, a redirect, an outbound call) sees the same parts.

A URL is refused unless it is an absolute http(s) URL with a host, without user information, and
without any whitespace or control character anywhere: browsers silently drop TAB, CR and LF inside
URLs and trim spaces around them, so such characters let a URL mean one thing to Flint and another to
the buyer's browser; in a header they would start a new header. The host must be one a browser reads
the same way: a DNS name of letters, digits and hyphens (an internationalised name is mapped as
browsers map it, UTS #46, and used in its ASCII ``xn--`` form), a dotted-quad IPv4 address (no
``127.1`` or ``0x7f.1``, which browsers read as IPv4 too), or a bracketed IPv6 address. What is
built from a URL uses the parsed scheme, host and port only, never the text as written.
"""
from __future__ import annotations

import ipaddress
import re
import unicodedata
from dataclasses import dataclass
from urllib.parse import urlsplit

import idna

from flint.errors import FlintError, invalid

MAX_URL = 2048
DEFAULT_PORTS = {"http": 80, "https": 443}
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:")
# The authority after urlsplit: a bracketed IPv6 address or a name, then an optional decimal port.
_AUTHORITY = re.compile(r"(?:\[(?P<ipv6>[0-9A-Fa-f:.]+)\]|(?P<name>[^\[\]:]+))(?::(?P<port>[0-9]{1,5}))?")
_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
# WHATWG URL: a host whose last label is a number is parsed as an IPv4 address.
_NUMBER = re.compile(r"(?:0[xX][0-9A-Fa-f]*|[0-9]+)")


@dataclass(frozen=True)
class ParsedUrl:
    url: str  # exactly as given
    scheme: str  # "http" or "https"
    host: str  # ASCII, lower case: a DNS name (A-labels), a dotted-quad IPv4 or a compressed IPv6 address
    port: int | None  # as written; None when the URL names none
    path: str
    query: str
    fragment: str

    @property
    def effective_port(self) -> int:
        return self.port or DEFAULT_PORTS[self.scheme]

    @property
    def netloc(self) -> str:
        """host[:port] as an origin writes it: IPv6 in brackets, the port only if not the default."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.effective_port == DEFAULT_PORTS[self.scheme] else f"{host}:{self.effective_port}"


def _unsafe(ch: str) -> bool:
    # Unicode categories C* (control, format such as zero-width and bidi overrides, surrogates,
    # private use, unassigned) and Z* (spaces, line and paragraph separators).
    return ch.isspace() or unicodedata.category(ch)[0] in "CZ"


def _ipv6_text(address: ipaddress.IPv6Address) -> str:
    """RFC 5952 text in hex pieces, as browsers serialise it (Python 3.13 writes IPv4-mapped
    addresses in dotted form instead)."""
    pieces = [f"{int(group, 16):x}" for group in address.exploded.split(":")]
    start, length, i = 0, 0, 0
    while i < len(pieces):  # the first longest run of two or more zero pieces becomes "::"
        end = i
        while end < len(pieces) and pieces[end] == "0":
            end += 1
        if end - i > length:
            start, length = i, end - i
        i = end + 1 if end == i else end
    if length < 2:
        return ":".join(pieces)
    return ":".join(pieces[:start]) + "::" + ":".join(pieces[start + length:])


def _host_name(name: str, refuse) -> str:
    try:
        ascii_name = idna.encode(name, uts46=True, std3_rules=False, transitional=False).decode("ascii").lower()
    except (idna.IDNAError, UnicodeError, ValueError):
        raise refuse("The URL's host is not a valid host name.") from None
    labels = ascii_name.split(".")
    if len(ascii_name) > 253 or not all(_LABEL.fullmatch(label) for label in labels):
        # Also a trailing dot: "shop.example." is another origin than "shop.example" to a browser.
        raise refuse("The URL's host is not a valid host name (letters, digits and hyphens between dots).")
    if _NUMBER.fullmatch(labels[-1]):
        try:
            address = ipaddress.IPv4Address(ascii_name)
        except ValueError:
            address = None
        if address is None or str(address) != ascii_name:
            raise refuse("An IPv4 host is written as four decimal numbers, like 192.0.2.10.")
    return ascii_name


def parse_url(url: str, param: str, *, production: bool = False) -> ParsedUrl:
    """The parts of ``url``, or a 400 ``url_invalid`` naming ``param``. ``production``: https only
    (400 ``url_insecure`` for http)."""
    def refuse(detail: str, code: str = "url_invalid") -> FlintError:
        return invalid(code, detail, param)

    if not isinstance(url, str) or not url:
        raise refuse("Give an absolute http(s) URL.")
    if len(url) > MAX_URL:
        raise refuse(f"URLs are at most {MAX_URL} characters.")
    if any(_unsafe(ch) for ch in url):
        raise refuse("URLs cannot contain spaces, line breaks, tabs or other control characters; "
                     "percent-encode them (%20).")
    scheme = _SCHEME.match(url)
    if scheme is None or scheme.group()[:-1].lower() not in DEFAULT_PORTS or not url[scheme.end():].startswith("//"):
        raise refuse("URLs are absolute http(s) URLs, like https://shop.example/thanks.")
    try:
        parts = urlsplit(url)
    except ValueError:  # e.g. an unbalanced "[" or characters that normalise into a delimiter
        raise refuse("The URL's host (or port) is not valid.") from None
    if "@" in parts.netloc:
        raise refuse("URLs cannot carry user information (user:password@).")
    authority = _AUTHORITY.fullmatch(parts.netloc)
    if authority is None:
        raise refuse("The URL needs a valid host (and, if any, a port of 1-65535).")
    port = int(authority["port"]) if authority["port"] is not None else None
    if port is not None and not 0 < port <= 65535:
        raise refuse("The URL's port must be 1-65535.")
    if authority["ipv6"] is not None:
        try:
            host = _ipv6_text(ipaddress.IPv6Address(authority["ipv6"]))
        except ValueError:
            raise refuse("The URL's host is not a valid IPv6 address.") from None
    else:
        host = _host_name(authority["name"], refuse)
    scheme_name = scheme.group()[:-1].lower()
    if production and scheme_name != "https":
        raise refuse("URLs must use https.", "url_insecure")
    return ParsedUrl(url, scheme_name, host, port, parts.path, parts.query, parts.fragment)


def origin(parsed_or_url: ParsedUrl | str) -> str:
    """``scheme://host[:port]`` rebuilt from the parsed parts (never the text as written): a valid
    CSP source and a browser's own serialisation of the origin."""
    parsed = parsed_or_url if isinstance(parsed_or_url, ParsedUrl) else parse_url(parsed_or_url, "url")
    return f"{parsed.scheme}://{parsed.netloc}"
