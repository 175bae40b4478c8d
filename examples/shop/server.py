"""Serving the shop with Hypercorn, in its own process or next to Flint in ``flint demo``."""
from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from quart import Quart


async def serve_shop(app: Quart, host: str, port: int, shutdown_trigger: Callable[[], Awaitable[None]]) -> None:
    """Serve ``app`` on host:port until ``shutdown_trigger`` returns (Hypercorn, no signal handlers
    of its own: the caller owns them, so several servers can share one loop)."""
    from hypercorn.asyncio import serve
    from hypercorn.config import Config as HypercornConfig

    hyper = HypercornConfig()
    hyper.bind = [f"[{host}]:{port}" if ":" in host else f"{host}:{port}"]
    hyper.accesslog = None
    hyper.errorlog = logging.getLogger("hypercorn.error")
    hyper.graceful_timeout = 5
    await serve(app, hyper, shutdown_trigger=shutdown_trigger)  # type: ignore[arg-type]


def connect_host(host: str) -> str:
    """Where a local client reaches a server bound to ``host`` (a wildcard means loopback)."""
    return {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)


async def wait_listening(host: str, port: int, *, timeout: float = 30.0,
                         serving: asyncio.Task | None = None) -> None:
    """Return once something accepts TCP connections on host:port. Raises TimeoutError after
    ``timeout`` seconds, or re-raises the error of ``serving`` if that task ends first."""
    deadline = time.monotonic() + timeout
    target = connect_host(host)
    while True:
        if serving is not None and serving.done():
            serving.result()  # raises the server's error (e.g. the port is taken)
            raise RuntimeError(f"the server for {host}:{port} stopped before it was listening")
        try:
            _, writer = await asyncio.open_connection(target, port)
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing is listening on {host}:{port} after {timeout:g} s") from None
            await asyncio.sleep(0.05)
            continue
        writer.close()
        try:
            await writer.wait_closed()
        except OSError:
            pass
        return
