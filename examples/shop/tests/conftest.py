"""The demo shop's own browser tests, written as a merchant's QA engineer writes them for a shop of their own
(docs/testing.md): Flint comes from the QA kit that ships with it, the pytest plugin's ``flint_server`` and
``flint_webhooks`` and ``FlintCheckout`` for the card form; the one fixture here, ``shop``, starts the shop
against that Flint. To test your own shop, copy this folder and make ``shop`` start yours."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

# Where `python -m examples.shop` runs from: the repository's root.
PROJECT = Path(__file__).resolve().parents[3]
# The shop asks Flint for drop-off recovery on every checkout (--recovery-after): a buyer gone this long gets
# a payment link. Flint's own default, 15 minutes; the tests skip them with flint_server.advance_clock.
RECOVERY_AFTER = 900


@dataclass
class Shop:
    url: str  # http://127.0.0.1:PORT, the origin allowed to embed the widget
    other_origin: str  # http://localhost:PORT: the same shop on an origin Flint was not told about
    log: Path


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def shop(flint_server, tmp_path_factory: pytest.TempPathFactory):
    """The shop as its own process on a free port, with the run's merchant key, talking to ``flint_server``;
    its origin is allowed to embed the widget."""
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path_factory.mktemp("shop") / "shop.log"
    # Secrets through the environment, not the command line (which `ps` shows).
    env = {name: value for name, value in os.environ.items() if not name.startswith("SHOP_")}
    env.update(SHOP_SECRET_KEY=flint_server.merchant["secret_key"], SHOP_RECOVERY_AFTER=str(RECOVERY_AFTER))
    with log.open("wb") as out:
        process = subprocess.Popen([sys.executable, "-m", "examples.shop", "--host", "127.0.0.1", "--port", str(port),
                                    "--flint-url", flint_server.url],
                                   cwd=PROJECT, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the shop did not start:\n{log.read_text()[-3000:]}", pytrace=False)
            time.sleep(0.05)
        flint_server.allow_origin(url)
        yield Shop(url=url, other_origin=f"http://localhost:{port}", log=log)
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
