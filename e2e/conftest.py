"""Browser-test fixtures: a real ``flint serve`` on a free loopback port, a merchant seeded in its
database, checkout sessions created through the HTTP API, and a merchant shop on a second origin for the
redirects to land on. The browser (Debian's Chromium under pytest-playwright) and the rule that browser
tests run last are the root conftest.py's, shared with the demo shop's suite (examples/shop/tests)."""
from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from flint.runtime import Runtime
from support.factories import make_merchant
from support.server import LiveServer, start_server, stop_server
from support.shop import Shop, start_shop, stop_shop

from .helpers import SCREENSHOTS


def run_async(make_coro: Callable[[], Any]) -> Any:
    """Runs a coroutine to its end on a fresh event loop in a worker thread (the main thread's loop
    belongs to Playwright once a browser test has started; see the root conftest.py)."""
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["value"] = asyncio.run(make_coro())
        except BaseException as exc:  # handed back to the caller's thread
            outcome["error"] = exc

    thread = threading.Thread(target=target, name="e2e-seed")
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


# When this run began: every pytest-xdist worker imports this file while collecting, before any test runs.
RUN_STARTED = time.time()


@pytest.fixture(scope="session", autouse=True)
def _fresh_screenshots() -> None:
    """Review screenshots are of this run only. Each worker removes those older than the run, never the
    ones another worker has already taken in this run."""
    for png in SCREENSHOTS.glob("*.png") if SCREENSHOTS.exists() else ():
        try:
            if png.stat().st_mtime < RUN_STARTED:
                png.unlink()
        except FileNotFoundError:  # another worker removed it first
            pass


# -- Flint and the shop ------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory):
    """A real ``flint serve`` on a free loopback port with its own SQLite file (one for the session;
    every test makes its own orders and sessions). ``server.logs()`` has its log."""
    live = start_server(tmp_path_factory.mktemp("e2e-server"))
    yield live
    stop_server(live)


@pytest.fixture(scope="session")
def shop():
    """The merchant's shop on a second loopback port and origin (``shop.url``, http://localhost:PORT)."""
    shop, httpd, thread = start_shop()
    yield shop
    stop_shop(httpd, thread)


@dataclass
class Merchant:
    id: str
    secret_key: str
    api: httpx.Client  # the merchant's backend: Bearer secret key, base URL = the server


@pytest.fixture(scope="session")
def merchant(server: LiveServer, shop: Shop):
    """A merchant seeded straight into the server's database (as support/factories.py does), with the
    shop's origin allowed for embedding."""

    async def seed():
        runtime = await Runtime.start(server.runtime_config())
        try:
            return await make_merchant(runtime, origins=[shop.origin])
        finally:
            await runtime.stop()

    record, secret_key = run_async(seed)
    with server.client(secret_key) as api:
        yield Merchant(id=record.id, secret_key=secret_key, api=api)


DEFAULT_LINE_ITEMS = [{"name": "Espresso beans 1 kg", "quantity": 1, "unit_amount": 2400}]


@pytest.fixture
def create_checkout_session(merchant: Merchant, shop: Shop) -> Callable[..., dict]:
    """``create_checkout_session(**fields)`` creates a checkout session through the real API
    (POST /v1/checkout/sessions) for a new inline order, mode "hosted", success_url the shop's
    /thanks and cancel_url its /cart; any field can be overridden. Returns the session's JSON, whose
    ``url`` is the hosted checkout page."""

    def create(*, line_items: list[dict] | None = None, currency: str = "usd", **fields: Any) -> dict:
        body = {
            "order": {"currency": currency, "line_items": line_items or DEFAULT_LINE_ITEMS},
            "mode": "hosted",
            "success_url": f"{shop.url}/thanks",
            "cancel_url": f"{shop.url}/cart",
            **fields,
        }
        response = merchant.api.post("/v1/checkout/sessions", json=body)
        assert response.status_code == 200, response.text
        return response.json()

    return create


@pytest.fixture
def checkout_session(create_checkout_session: Callable[..., dict]) -> dict:
    """One open hosted checkout session for a $24.00 order."""
    return create_checkout_session()
