"""The sweeper and the webhook worker really run: inside `flint serve`, and alone as `flint worker`."""
import asyncio
import os
import subprocess
import sys
import time

import pytest

from flint.checkout import service as checkout
from flint.config import Config
from flint.db.migrate import migrate
from flint.runtime import Runtime
from support import ROOT, TEST_SECRET
from support.factories import make_merchant, make_session


@pytest.fixture
async def rt_on_file(tmp_path):
    """A migrated database file, a Runtime on it, and the environment for a process on it."""
    url = f"sqlite:///{tmp_path / 'worker.sqlite3'}"
    runtime = await Runtime.start(Config(database_url=url, secret_keys=(TEST_SECRET,), env="development"))
    await migrate(runtime.db)
    env = dict(os.environ, FLINT_DATABASE_URL=url, FLINT_SECRET_KEY=TEST_SECRET, FLINT_SWEEP_INTERVAL="0.2",
               FLINT_ENV="development")
    yield runtime, env
    await runtime.stop()


async def _backdate(rt, session_id):
    async with rt.db.transaction() as conn:  # as if the session's hour had passed
        await conn.execute("UPDATE checkout_sessions SET expires_at = '2020-01-01T00:00:00.000000Z' WHERE id = :id",
                           {"id": session_id})


async def _wait_expired(rt, merchant_id, session_id, seconds=10.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if (await checkout.get_session(rt, merchant_id, session_id)).status == "expired":
            return True
        await asyncio.sleep(0.1)
    return False


async def test_flint_serve_expires_sessions_on_its_own(server, server_rt, merchant):
    merchant_obj, key = merchant
    session = await make_session(server_rt, merchant_obj.id)
    await _backdate(server_rt, session.id)
    assert await _wait_expired(server_rt, merchant_obj.id, session.id)
    async with server.async_client(key) as client:
        shown = (await client.get(f"/v1/checkout/sessions/{session.id}")).json()
        assert (shown["status"], shown["client_token"]) == ("expired", None)
        events = (await client.get(f"/v1/orders/{session.order_id}/events")).json()["data"]
        assert [(e["type"], e["actor"]["type"]) for e in events][-1] == ("checkout.session.expired", "system")


async def test_flint_worker_runs_the_sweeper_alone(tmp_path, rt_on_file):
    rt, env = rt_on_file
    merchant, _ = await make_merchant(rt)
    session = await make_session(rt, merchant.id)
    await _backdate(rt, session.id)
    worker = subprocess.Popen([sys.executable, "-m", "flint.cli", "worker"], cwd=ROOT, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        assert await _wait_expired(rt, merchant.id, session.id, seconds=20)
    finally:
        worker.terminate()
        output = worker.communicate(timeout=10)[0].decode()
    assert worker.returncode == 0, output  # stops cleanly on SIGTERM
    assert "Traceback" not in output


async def test_flint_worker_delivers_webhooks_alone(tmp_path, rt_on_file):
    """Events recorded while no process sends webhooks are delivered once `flint worker` starts."""
    from standardwebhooks import Webhook

    from flint.actors import Actor
    from flint.orders.service import create_order
    from flint.webhooks import service as webhooks
    from support.factories import new_order
    from support.receiver import Receiver

    rt, env = rt_on_file
    merchant, _ = await make_merchant(rt)
    receiver = Receiver().start()
    try:
        endpoint, secret = await webhooks.create_endpoint(rt, merchant.id, url=receiver.url("/worker"),
                                                          events=["order.created"], description=None)
        orders = [await create_order(rt, merchant.id, new_order(), Actor("merchant", merchant.id)) for _ in range(3)]
        worker = subprocess.Popen([sys.executable, "-m", "flint.cli", "worker"], cwd=ROOT, env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        try:
            got = await asyncio.to_thread(receiver.wait_for, "/worker", 3)
        finally:
            worker.terminate()
            output = worker.communicate(timeout=10)[0].decode()
        assert worker.returncode == 0 and "Traceback" not in output, output
        delivered = sorted(Webhook(secret).verify(r.body, r.headers)["data"]["object"]["id"] for r in got)
        assert delivered == sorted(order.id for order in orders)
    finally:
        receiver.stop()


def test_development_secret_survives_a_restart_and_production_demands_one(tmp_path):
    from flint.config import Config

    env = {"FLINT_DATABASE_URL": f"sqlite:///{tmp_path / 'dev.sqlite3'}", "FLINT_ENV": "development"}
    first, second = Config.from_env(env), Config.from_env(env)
    assert first.secret_keys == second.secret_keys and len(first.secret_keys[0]) >= 32
    assert oct((tmp_path / "flint-dev-secret-key").stat().st_mode & 0o777) == "0o600"
    assert Config.from_env(dict(env, FLINT_SECRET_KEY="new,old")).secret_keys == ("new", "old")
    with pytest.raises(ValueError):
        Config.from_env(dict(env, FLINT_ENV="production"))
    # Production is the default: no FLINT_ENV and no key refuses to start (tests/security holds the CLI).
    with pytest.raises(ValueError, match="FLINT_SECRET_KEY is required"):
        Config.from_env({"FLINT_DATABASE_URL": env["FLINT_DATABASE_URL"]})
