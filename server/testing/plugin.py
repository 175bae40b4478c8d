"""Flint's pytest plugin (the ``pytest11`` entry point ``flint``: installing Flint is enough).

Fixtures:

- ``flint_server`` (session scope; under pytest-xdist, one per worker): a real ``flint serve`` process on a
  free 127.0.0.1 port with a fresh SQLite file in a temporary directory, in development mode, and a
  merchant created for the run. ``.url``, ``.merchant`` (``{id, secret_key, email, password}``),
  ``.client()`` (an ``httpx.Client`` with the merchant's key), ``.allow_origin(origin)``,
  ``.advance_clock(seconds)``, ``.logs()``. Stopped at the end of the session, also when tests fail or
  the run is interrupted. Override the ``flint_server_env`` fixture to pass FLINT_* settings.
- ``flint_webhooks`` (function scope, over one receiver per session): the merchant's webhook endpoint,
  verifying every delivery; ``.wait_for(type, timeout=10, order_id=None)`` returns the event. A test sees
  only what arrived after the fixture was handed to it.

Loading this module imports nothing but pytest: the fixtures import what they run only when a test asks
for them, so a suite that never uses them pays nothing.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from flint.testing.server import FlintServer
    from flint.testing.webhooks import WebhookReceiver, Webhooks


@pytest.fixture(scope="session")
def flint_server_env() -> dict[str, str]:
    """Extra environment for the ``flint_server`` process (e.g. ``{"FLINT_SMTP_URL": ...}``); override it
    in your conftest.py. Empty by default."""
    return {}


@pytest.fixture(scope="session")
def flint_server(tmp_path_factory: pytest.TempPathFactory, flint_server_env: dict[str, str]):
    """A real Flint for this test session (see the module's docstring). Its log is attached to the report
    of a failed test as the section "flint server log" (the last 4000 characters)."""
    from flint.testing.server import FlintServer

    server = FlintServer(tmp_path_factory.mktemp("flint"), env=flint_server_env)
    try:
        yield server.start()
    finally:
        server.stop()


@pytest.fixture(scope="session")
def _flint_webhook_receiver(flint_server: FlintServer):
    from flint.testing.webhooks import WebhookReceiver

    receiver = WebhookReceiver().start(flint_server)
    try:
        yield receiver
    finally:
        receiver.stop()


@pytest.fixture
def flint_webhooks(_flint_webhook_receiver: WebhookReceiver) -> Webhooks:
    """The merchant's webhook endpoint as this test sees it: ``wait_for(type, timeout=10, order_id=None,
    where=None)`` returns a verified event that arrived during this test (each event once);
    ``events``, ``rejected`` (deliveries that did not verify, answered 400), ``fail_next(count, status)``,
    ``url``, ``secret``, ``endpoint_id``."""
    from flint.testing.webhooks import Webhooks

    return Webhooks(_flint_webhook_receiver)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    """A failed test that used ``flint_server`` carries the end of the server's log in its report."""
    report = yield
    if report.failed and "flint_server" in getattr(item, "fixturenames", ()):
        server = getattr(item, "funcargs", {}).get("flint_server")
        if server is not None and hasattr(server, "logs"):
            report.sections.append(("flint server log", server.logs()[-4000:]))
    return report
