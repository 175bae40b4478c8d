"""The demo shop (examples/shop) as a real process on its own loopback port, against a real
``flint serve``: used by tests/examples and by the browser tests in e2e/."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from support import ROOT, free_port


@dataclass
class LiveShop:
    url: str
    port: int
    log_path: Path
    process: subprocess.Popen = field(repr=False)

    def client(self, **kwargs) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.url, follow_redirects=False, timeout=30, **kwargs)

    def logs(self) -> str:
        return self.log_path.read_text()


def start_shop(tmp: Path, flint_url: str, secret_key: str, flint_public_url: str | None = None,
               webhook_secret: str | None = None, port: int | None = None) -> LiveShop:
    """``python -m examples.shop`` on a free port (or ``port``); returns once it printed its
    listening line. ``webhook_secret`` (whsec_...) turns its ``POST /webhooks`` on."""
    port = port or free_port()
    log_path = tmp / f"shop-{port}.log"
    env = dict(os.environ, SHOP_SECRET_KEY=secret_key)  # the secrets through the environment, not argv
    env.pop("SHOP_FLINT_PUBLIC_URL", None)
    env.pop("SHOP_WEBHOOK_SECRET", None)
    if webhook_secret:
        env["SHOP_WEBHOOK_SECRET"] = webhook_secret
    args = [sys.executable, "-m", "examples.shop", "--host", "127.0.0.1", "--port", str(port), "--flint-url", flint_url]
    if flint_public_url:
        args += ["--flint-public-url", flint_public_url]
    with open(log_path, "wb") as log:
        process = subprocess.Popen(args, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    expected = f"shop listening on http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while expected not in log_path.read_text():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            process.wait()
            raise RuntimeError(f"the shop did not start:\n{log_path.read_text()[-3000:]}")
        time.sleep(0.05)
    return LiveShop(url=f"http://127.0.0.1:{port}", port=port, log_path=log_path, process=process)


def stop_shop(shop: LiveShop) -> int:
    shop.process.terminate()
    try:
        return shop.process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        shop.process.kill()
        shop.process.wait()
        raise
