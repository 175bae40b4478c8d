"""The client's address behind a load balancer.

Behind a proxy every request arrives from the proxy's address, so per-address limits (failed
sign-ins) would lump all buyers and merchants together. ``X-Forwarded-For`` carries the real
address, but anyone can send that header: it is believed only when the request comes from a proxy
the operator listed in ``FLINT_TRUSTED_PROXIES``, and then only up to the first hop (from the
right) that is not one of those proxies.
"""
from __future__ import annotations

import functools
import ipaddress

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@functools.lru_cache(maxsize=8)  # called per request with the config's (immutable) tuple
def parse_networks(values: tuple[str, ...]) -> tuple[Network, ...]:
    """"10.0.0.0/8", "127.0.0.1", "::1" → networks; raises ValueError on anything else."""
    return tuple(ipaddress.ip_network(value.strip(), strict=False) for value in values if value.strip())


def _trusted(address: str, trusted: tuple[Network, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in trusted)


def client_address(remote_addr: str | None, forwarded_for: str | None, trusted: tuple[Network, ...]) -> str:
    address = remote_addr or "unknown"
    if not trusted or not forwarded_for or not _trusted(address, trusted):
        return address
    # Walk from the nearest hop outwards; the first address no trusted proxy vouches for is the client.
    for hop in reversed([part.strip() for part in forwarded_for.split(",") if part.strip()]):
        if not _trusted(hop, trusted):
            return hop
        address = hop
    return address
