"""Browser-test fixtures: Debian's Chromium under pytest-playwright, a real ``flint serve`` on a free
loopback port, a merchant seeded in its database, checkout sessions created through the HTTP API, and
a merchant shop on a second origin for the redirects to land on.

pytest-playwright's own fixtures and options work as documented (``page``, ``context``,
``new_context``, ``browser``; ``--headed``, ``--slowmo``, ``--tracing``, ``--screenshot``,
``--video``, ``--output``); only the browser launch is changed, to Debian's Chromium.
"""
from __future__ import annotations

import asyncio
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import httpx
import pytest

from flint.runtime import Runtime
from support.browser import CHROMIUM, CHROMIUM_ARGS, CONTEXT_OPTIONS
from support.factories import make_merchant
from support.server import LiveServer, start_server, stop_server
from support.shop import Shop, start_shop, stop_shop
from tests.examples.live_shop import LiveShop, start_shop as start_demo_shop, stop_shop as stop_demo_shop

from .helpers import SCREENSHOTS

E2E = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Marks everything under e2e/ with ``e2e`` and runs it after every other test.

    Last, because Playwright's sync API marks its event loop as running on the main thread from its
    first call until the session-scoped ``playwright`` fixture stops at the very end of the run: an
    ``async def`` test (pytest-asyncio) or an ``asyncio.run`` after it would fail with "cannot be
    called from a running event loop". The sort is stable, so every other test keeps its order. Under
    pytest-xdist (make test) each worker takes whole files in this order (--no-loadscope-reorder), so no
    worker runs another test after a browser test either."""
    for item in items:
        if E2E in Path(item.path).parents:
            item.add_marker(pytest.mark.e2e)
            # pytest-playwright's stand-in for pytest-base-url's base_url fixture is a session fixture
            # on an instance, which pytest 9 deprecates; harmless here (nothing sets base_url).
            item.add_marker(pytest.mark.filterwarnings(
                "ignore:Session-scoped fixtures defined as instance methods:pytest.PytestRemovedIn10Warning"))
    items.sort(key=lambda item: item.get_closest_marker("e2e") is not None)


def run_async(make_coro: Callable[[], Any]) -> Any:
    """Runs a coroutine to its end on a fresh event loop in a worker thread (the main thread's loop
    belongs to Playwright once a browser test has started; see above)."""
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


# -- the browser -------------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict) -> dict:
    """pytest-playwright's launch options (--headed, --slowmo, --browser-channel) on Debian's Chromium."""
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} is missing: run `make chromium` (apt-get install chromium)", pytrace=False)
    return {**browser_type_launch_args, "executable_path": CHROMIUM,
            "args": [*browser_type_launch_args.get("args", []), *CHROMIUM_ARGS]}


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args: dict) -> dict:
    """Every context: a desktop viewport, US English and UTC, so pages and screenshots are repeatable."""
    return {**CONTEXT_OPTIONS, **browser_context_args}


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


@pytest.fixture(scope="session")
def demo_shop(server: LiveServer, merchant: Merchant, shop: Shop, tmp_path_factory: pytest.TempPathFactory):
    """The demo merchant shop of examples/shop (what `flint demo` runs) as its own process on its own
    port, with the merchant's secret key; its origin is added to the merchant's allowed_origins."""
    live = start_demo_shop(tmp_path_factory.mktemp("demo-shop"), server.url, merchant.secret_key)
    allowed = merchant.api.post("/v1/merchant", json={"allowed_origins": [shop.origin, live.url]})
    assert allowed.status_code == 200, allowed.text
    yield live
    assert stop_demo_shop(live) == 0, live.logs()[-2000:]


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
