"""A live `flint serve` with a short retry schedule and fast polling, and a real webhook receiver."""
from __future__ import annotations

import pytest

from flint.runtime import Runtime
from support.server import LiveServer, start_server, stop_server
from support.factories import make_merchant

from support.receiver import Receiver

# Five retries a fraction of a second apart (each ±20% jitter) instead of the 24-hour schedule.
SHORT_SCHEDULE = "0.3,0.3,0.3,0.3,0.3"


@pytest.fixture(scope="module")
def hook_server(tmp_path_factory: pytest.TempPathFactory):
    live = start_server(tmp_path_factory.mktemp("hooks"), extra_env={
        "FLINT_WEBHOOK_RETRY_SCHEDULE": SHORT_SCHEDULE, "FLINT_WEBHOOK_POLL_INTERVAL": "0.05"})
    yield live
    stop_server(live)


@pytest.fixture
async def hook_rt(hook_server: LiveServer):
    runtime = await Runtime.start(hook_server.runtime_config())
    yield runtime
    await runtime.stop()


@pytest.fixture
async def hook_merchant(hook_rt: Runtime):
    """(merchant, secret_key) on the hook server."""
    return await make_merchant(hook_rt)


@pytest.fixture(scope="module")
def receiver():
    live = Receiver().start()
    yield live
    live.stop()
