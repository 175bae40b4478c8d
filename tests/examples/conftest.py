"""The demo shop as a real process on its own loopback port, against a real ``flint serve``."""
from __future__ import annotations

from pathlib import Path

import pytest

from support.server import LiveServer

from .live_shop import start_shop, stop_shop


@pytest.fixture
def shop(tmp_path: Path, server: LiveServer, merchant):
    """The shop process for the ``merchant`` fixture's secret key, talking to the live server."""
    _, secret = merchant
    live = start_shop(tmp_path, server.url, secret)
    yield live
    assert stop_shop(live) == 0, live.logs()[-2000:]
