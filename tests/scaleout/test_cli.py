"""The commands a deployment runs: `flint serve --workers N --no-background` beside `flint worker`,
and `flint reseal-secrets` for key rotation."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from server.config import Config
from server.runtime import Runtime
from server.webhooks import service as webhooks
from tests.conftest import ROOT, TEST_SECRET, free_port, fresh_database
from tests.factories import make_merchant
from tests.webhooks.receiver import Receiver

from .test_processes import start_worker, stop_process


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        children = (task / "children").read_text().split()
        found += [int(child) for child in children]
    return found


async def test_serve_with_workers_and_no_background_leaves_webhooks_to_flint_worker(backend, tmp_path):
    cleanups: list = []
    db_url = fresh_database(backend, tmp_path, cleanups)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = dict(os.environ, FLINT_DATABASE_URL=db_url, FLINT_SECRET_KEY=TEST_SECRET, FLINT_PUBLIC_URL=url,
               FLINT_ENV="development", FLINT_LOG_LEVEL="INFO", FLINT_WEBHOOK_POLL_INTERVAL="0.05")
    log = open(tmp_path / "serve.log", "wb")
    serve = subprocess.Popen([sys.executable, "-m", "server.cli", "serve", "--host", "127.0.0.1", "--port", str(port),
                              "--workers", "2", "--no-background"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    log.close()
    receiver = Receiver().start()
    worker = None
    runtime = await Runtime.start(Config(database_url=db_url, secret_keys=(TEST_SECRET,), public_url=url))
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert serve.poll() is None and time.monotonic() < deadline, (tmp_path / "serve.log").read_text()[-3000:]
            time.sleep(0.1)
        assert len(_children(serve.pid)) >= 2  # Hypercorn's two worker processes on one port

        merchant, key = await make_merchant(runtime)
        await webhooks.create_endpoint(runtime, merchant.id, url=receiver.url("/no-bg"), events=["order.*"],
                                       description=None)
        async with httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=30) as api:
            for n in range(6):  # new connections: the kernel spreads them over both processes
                async with httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {key}"}) as fresh:
                    created = await fresh.post("/v1/orders", json={
                        "currency": "usd", "line_items": [{"name": "Bg", "quantity": 1, "unit_amount": 100 + n}]})
                    assert created.status_code == 200, created.text
            assert (await api.get("/v1/orders")).json()["data"][0]["amount_total"] == 105
        time.sleep(1.5)
        assert receiver.at("/no-bg") == []  # no process delivers: background work is off in flint serve
        worker = start_worker(tmp_path, db_url, {"FLINT_WEBHOOK_POLL_INTERVAL": "0.05"})
        assert len(receiver.wait_for("/no-bg", 6, timeout=30)) == 6  # the worker does
    finally:
        serve.send_signal(signal.SIGTERM)
        try:
            code = serve.wait(timeout=20)
        except subprocess.TimeoutExpired:
            serve.kill()
            raise
        if worker is not None:
            stop_process(worker)
        receiver.stop()
        await runtime.stop()
        for cleanup in cleanups:
            cleanup()
    assert code == 0, (tmp_path / "serve.log").read_text()[-3000:]
    assert "Traceback" not in (tmp_path / "serve.log").read_text()


async def test_reseal_secrets_command(backend, tmp_path):
    cleanups: list = []
    db_url = fresh_database(backend, tmp_path, cleanups)
    runtime = await Runtime.start(Config(database_url=db_url, secret_keys=(TEST_SECRET,), public_url="http://127.0.0.1:9"))
    try:
        from server.db.migrate import migrate

        await migrate(runtime.db)
        merchant, _ = await make_merchant(runtime)
        await webhooks.create_endpoint(runtime, merchant.id, url="http://127.0.0.1:9/h", events=["*"], description=None)
        env = dict(os.environ, FLINT_DATABASE_URL=db_url, FLINT_SECRET_KEY=f"brand-new-key,{TEST_SECRET}",
                   FLINT_LOG_LEVEL="WARNING")
        done = subprocess.run([sys.executable, "-m", "server.cli", "reseal-secrets"], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        report = json.loads(done.stdout)["resealed"]
        assert report["webhook_endpoints.secret"] == {"resealed": 1, "unreadable": 0}
        assert set(report) >= {"apps.webhook_secret", "idempotency_keys.response_body"}
    finally:
        await runtime.stop()
        for cleanup in cleanups:
            cleanup()
