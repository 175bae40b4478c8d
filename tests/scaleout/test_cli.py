"""The commands a deployment runs: `flint serve --workers N --no-background` beside `flint worker`,
and `flint reseal-secrets` for key rotation."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path


from flint.config import Config
from flint.runtime import Runtime
from flint.webhooks import service as webhooks
from support import ROOT, TEST_SECRET
from support.server import start_server, stop_server
from tests.conftest import fresh_database
from support.factories import make_merchant
from support.receiver import Receiver

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
    live = start_server(tmp_path, {"FLINT_WEBHOOK_POLL_INTERVAL": "0.05"}, db_url=db_url,
                        args=("--workers", "2", "--no-background"), ready_path="/readyz")
    receiver = Receiver().start()
    worker = None
    runtime = await Runtime.start(live.runtime_config())
    try:
        assert len(_children(live.process.pid)) >= 2  # Hypercorn's two worker processes on one port

        merchant, key = await make_merchant(runtime)
        await webhooks.create_endpoint(runtime, merchant.id, url=receiver.url("/no-bg"), events=["order.*"],
                                       description=None)
        for n in range(6):  # new connections each time: the kernel spreads them over both processes
            async with live.async_client(key) as fresh:
                created = await fresh.post("/v1/orders", json={
                    "currency": "usd", "line_items": [{"name": "Bg", "quantity": 1, "unit_amount": 100 + n}]})
                assert created.status_code == 200, created.text
        async with live.async_client(key) as api:
            assert (await api.get("/v1/orders")).json()["data"][0]["amount_total"] == 105
        time.sleep(1.5)
        assert receiver.at("/no-bg") == []  # no process delivers: background work is off in flint serve
        worker = start_worker(tmp_path, db_url, {"FLINT_WEBHOOK_POLL_INTERVAL": "0.05"})
        assert len(receiver.wait_for("/no-bg", 6, timeout=30)) == 6  # the worker does
    finally:
        stop_server(live)
        if worker is not None:
            stop_process(worker)
        receiver.stop()
        await runtime.stop()
        for cleanup in cleanups:
            cleanup()
    assert live.process.returncode == 0, live.logs()[-3000:]  # SIGTERM stops the processes cleanly
    assert "Traceback" not in live.logs()


async def test_reseal_secrets_command(backend, tmp_path):
    cleanups: list = []
    db_url = fresh_database(backend, tmp_path, cleanups)
    runtime = await Runtime.start(Config(database_url=db_url, secret_keys=(TEST_SECRET,), env="development", public_url="http://127.0.0.1:9"))
    try:
        from flint.db.migrate import migrate

        await migrate(runtime.db)
        merchant, _ = await make_merchant(runtime)
        await webhooks.create_endpoint(runtime, merchant.id, url="http://127.0.0.1:9/h", events=["*"], description=None)
        env = dict(os.environ, FLINT_DATABASE_URL=db_url, FLINT_SECRET_KEY=f"brand-new-key,{TEST_SECRET}",
                   FLINT_LOG_LEVEL="WARNING")
        done = subprocess.run([sys.executable, "-m", "flint.cli", "reseal-secrets"], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        report = json.loads(done.stdout)["resealed"]
        assert report["webhook_endpoints.secret"] == {"resealed": 1, "unreadable": 0}
        assert set(report) >= {"apps.webhook_secret", "idempotency_keys.response_body"}
    finally:
        await runtime.stop()
        for cleanup in cleanups:
            cleanup()
