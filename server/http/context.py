"""What a request handler needs to know about its request and its process."""
from __future__ import annotations

from quart import current_app, request

from flint.proxies import client_address as _behind_proxies
from flint.proxies import parse_networks
from flint.runtime import Runtime


def runtime() -> Runtime:
    return current_app.extensions["flint"]


def client_address() -> str:
    """The caller's address: X-Forwarded-For is believed only from the proxies FLINT_TRUSTED_PROXIES
    lists (flint.proxies), so a client cannot forge its way past a per-address limit."""
    return _behind_proxies(request.remote_addr, request.headers.get("X-Forwarded-For"),
                           parse_networks(runtime().config.trusted_proxies))
