"""Several Flint processes on one database keep every guarantee (issue 8).

Two real `flint serve` processes and one `flint worker` share one database: a PostgreSQL schema
when FLINT_TEST_POSTGRES_URL is set, and a SQLite file too (several processes on one machine is
what SQLite's busy timeout and BEGIN IMMEDIATE are for). Requests alternate between the two
servers, as a load balancer would spread them, and every check reads the shared database.
"""
from __future__ import annotations

import asyncio
import itertools
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from flint.config import Config
from flint.runtime import Runtime
from support import ROOT, TEST_SECRET
from support.server import LiveServer, start_server, stop_server
from tests.conftest import BACKENDS, fresh_database
from support.factories import make_merchant

CARD = {"number": "4242424242424242", "exp_month": 12, "exp_year": 2034, "cvc": "123"}
PASSWORD = "a long and correct password"
_emails = itertools.count(1)


def start_worker(tmp: Path, db_url: str, extra_env: dict[str, str] | None = None) -> subprocess.Popen:
    env = dict(os.environ, FLINT_DATABASE_URL=db_url, FLINT_SECRET_KEY=TEST_SECRET,
               FLINT_PUBLIC_URL="http://127.0.0.1:9", FLINT_ENV="development", FLINT_SWEEP_INTERVAL="0.5",
               FLINT_LOG_LEVEL="INFO", **(extra_env or {}))
    log = open(tmp / f"worker-{time.monotonic_ns()}.log", "wb")
    try:
        return subprocess.Popen([sys.executable, "-m", "flint.cli", "worker"], cwd=ROOT, env=env,
                                stdout=log, stderr=subprocess.STDOUT)
    finally:
        log.close()


def stop_process(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@dataclass
class Cluster:
    a: LiveServer
    b: LiveServer
    worker: subprocess.Popen
    db_url: str
    backend: str

    @property
    def servers(self) -> tuple[LiveServer, LiveServer]:
        return self.a, self.b

    def config(self) -> Config:
        return Config(database_url=self.db_url, secret_keys=(TEST_SECRET,), env="development", public_url=self.a.url)


@pytest.fixture(scope="module", params=BACKENDS)
def cluster(request, tmp_path_factory):
    tmp = tmp_path_factory.mktemp(f"cluster-{request.param}")
    cleanups: list = []
    db_url = fresh_database(request.param, tmp, cleanups)
    a = start_server(tmp, db_url=db_url)
    b = start_server(tmp, db_url=db_url)
    worker = start_worker(tmp, db_url)
    yield Cluster(a, b, worker, db_url, request.param)
    stop_process(worker)
    for live in (a, b):
        stop_server(live)
    for live in (a, b):
        errors = [line for line in live.logs().splitlines() if "Traceback" in line or '"level": "error"' in line]
        assert not errors, errors[:5]
    for cleanup in cleanups:
        cleanup()


@pytest.fixture
async def rt(cluster):
    """A Runtime on the cluster's database: for seeding and for looking inside."""
    runtime = await Runtime.start(cluster.config())
    yield runtime
    await runtime.stop()


@pytest.fixture
async def merchant(rt):
    return await make_merchant(rt)


async def _one(rt, sql: str, params: dict | None = None) -> dict:
    async with rt.db.read() as conn:
        return await conn.fetch_one(sql, params or {})


async def _session(client: httpx.AsyncClient, amount: int) -> dict:
    response = await client.post("/v1/checkout/sessions", json={
        "order": {"currency": "usd", "line_items": [{"name": "Beans", "quantity": 1, "unit_amount": amount}]},
        "mode": "embedded", "success_url": "https://shop.example/thanks"})
    assert response.status_code == 200, response.text
    return response.json()


async def test_fifty_concurrent_confirms_over_two_processes_make_one_payment(cluster, rt, merchant):
    _, key = merchant
    async with cluster.a.async_client(key) as api:
        session = await _session(api, 4200)
    buyers = [s.async_client(session["client_token"]) for s in cluster.servers]
    try:
        answers = await asyncio.gather(*(
            buyers[i % 2].post(f"/v1/checkout/sessions/{session['id']}/confirm", json={"card": CARD})
            for i in range(50)))
    finally:
        for client in buyers:
            await client.aclose()
    won = [r for r in answers if r.status_code == 200]
    assert len(won) == 1 and won[0].json()["status"] == "succeeded", [r.text for r in won]
    lost = Counter((r.status_code, r.json()["code"]) for r in answers if r.status_code != 200)
    assert set(lost) <= {(409, "payment_in_progress"), (409, "order_already_paid")}, lost
    assert sum(lost.values()) == 49
    order_id = session["order_id"]
    payments = await _one(rt, "SELECT COUNT(*) AS n, SUM(CASE WHEN status = 'succeeded' THEN 1 ELSE 0 END) AS ok "
                              "FROM payments WHERE order_id = :o", {"o": order_id})
    assert (payments["n"], payments["ok"]) == (1, 1), payments  # the losers never got as far as a payment row
    order = await _one(rt, "SELECT status, amount_paid, attempt_payment_id FROM orders WHERE id = :o", {"o": order_id})
    assert order == {"status": "paid", "amount_paid": 4200, "attempt_payment_id": None}
    paid_events = await _one(rt, "SELECT COUNT(*) AS n FROM events WHERE order_id = :o AND type = 'payment.succeeded'",
                             {"o": order_id})
    assert paid_events["n"] == 1


async def test_concurrent_partial_refunds_over_two_processes_never_exceed_the_paid_amount(cluster, rt, merchant):
    _, key = merchant
    async with cluster.a.async_client(key) as api:
        session = await _session(api, 1000)
    async with cluster.b.async_client(session["client_token"]) as buyer:
        paid = await buyer.post(f"/v1/checkout/sessions/{session['id']}/confirm", json={"card": CARD})
    assert paid.json()["status"] == "succeeded", paid.text
    payment_id = paid.json()["id"]
    apis = [s.async_client(key) for s in cluster.servers]
    try:
        answers = await asyncio.gather(*(
            apis[i % 2].post("/v1/refunds", json={"payment": payment_id, "amount": 70}) for i in range(30)))
        refunded = [r.json() for r in answers if r.status_code == 200]
        assert all(r["status"] == "succeeded" for r in refunded), refunded
        assert len(refunded) == 14, len(refunded)  # 14 × 70 = 980 of 1000; a 15th would be 1050
        refused = Counter((r.status_code, r.json()["code"]) for r in answers if r.status_code != 200)
        assert refused == {(400, "refund_exceeds_refundable"): 16}, refused
        # The last 20 is still refundable, and then nothing is.
        last = await apis[1].post("/v1/refunds", json={"payment": payment_id, "amount": 20})
        assert last.status_code == 200 and last.json()["status"] == "succeeded", last.text
        nothing = await apis[0].post("/v1/refunds", json={"payment": payment_id, "amount": 1})
        assert (nothing.status_code, nothing.json()["code"]) == (409, "charge_already_refunded"), nothing.text
    finally:
        for client in apis:
            await client.aclose()
    stored = await _one(rt, "SELECT amount_refunded, amount_refund_pending FROM payments WHERE id = :p", {"p": payment_id})
    assert stored == {"amount_refunded": 1000, "amount_refund_pending": 0}
    total = await _one(rt, "SELECT COUNT(*) AS n, SUM(amount) AS s FROM refunds WHERE payment_id = :p AND status = 'succeeded'",
                       {"p": payment_id})
    assert (total["n"], total["s"]) == (15, 1000)
    order = await _one(rt, "SELECT amount_refunded FROM orders WHERE id = :o", {"o": session["order_id"]})
    assert order["amount_refunded"] == 1000


async def test_an_idempotency_key_replayed_on_the_other_process_replays_the_response(cluster, rt, merchant):
    me, key = merchant
    body = {"currency": "eur", "line_items": [{"name": "Tea", "quantity": 2, "unit_amount": 350}]}
    headers = {"Idempotency-Key": "scale-out-replay-1"}
    async with cluster.a.async_client(key) as api_a, cluster.b.async_client(key) as api_b:
        first = await api_a.post("/v1/orders", json=body, headers=headers)
        again = await api_b.post("/v1/orders", json=body, headers=headers)
        changed = await api_b.post("/v1/orders", json=dict(body, currency="usd"), headers=headers)
        # Both at once on both processes with a new key: one runs, the other replays or waits.
        both = await asyncio.gather(api_a.post("/v1/orders", json=body, headers={"Idempotency-Key": "scale-out-2"}),
                                    api_b.post("/v1/orders", json=body, headers={"Idempotency-Key": "scale-out-2"}))
    assert first.status_code == 200 and "Idempotent-Replayed" not in first.headers
    assert again.status_code == 200 and again.headers["Idempotent-Replayed"] == "true"
    assert again.content == first.content  # byte for byte, from the other process
    assert changed.status_code == 422 and changed.json()["code"] == "idempotency_key_reused", changed.text
    created = [r for r in both if r.status_code == 200]
    assert created and len({r.json()["id"] for r in created}) == 1, [r.text for r in both]
    for other in both:
        if other.status_code != 200:
            assert (other.status_code, other.json()["code"]) == (409, "idempotency_key_in_use"), other.text
    count = await _one(rt, "SELECT COUNT(*) AS n FROM orders WHERE merchant_id = :m", {"m": me.id})
    assert count["n"] == 2


def _field(html: str, name: str) -> str:
    return re.search(rf'name="{name}" value="([^"]+)"', html).group(1)


async def test_sign_in_sessions_csrf_and_rate_limits_span_both_processes(cluster, rt):
    from flint.merchants import service as merchants

    n = next(_emails)
    me, key = await merchants.create_merchant(rt, name=f"Two Doors {n}", email=f"doors{n}@shop.example",
                                              password=PASSWORD)
    a, b = cluster.a.url, cluster.b.url
    # One browser; cookies are per host, not per port, so both processes see the same cookies.
    async with httpx.AsyncClient(follow_redirects=False, timeout=30) as browser:
        form = await browser.get(f"{a}/login")
        signed_in = await browser.post(f"{b}/login", data={"csrf_token": _field(form.text, "csrf_token"),
                                                           "email": me.email, "password": PASSWORD})
        assert signed_in.status_code == 303, signed_in.text  # A's form token and cookie, accepted by B
        account = await browser.get(f"{a}/account")
        assert account.status_code == 200 and me.name in account.text  # B's session, known to A
        out = await browser.post(f"{b}/logout", data={"csrf_token": _field(account.text, "csrf_token")})
        assert out.status_code == 303
        assert (await browser.get(f"{a}/account")).status_code == 303  # signed out everywhere

        # Failed sign-ins counted across processes: the fifth failure locks the email on both.
        for attempt in range(5):
            page = await browser.get(f"{(a, b)[attempt % 2]}/login")
            failed = await browser.post(f"{(b, a)[attempt % 2]}/login", data={
                "csrf_token": _field(page.text, "csrf_token"), "email": me.email, "password": "guess"})
            assert failed.status_code == 401, failed.status_code
        for door in (a, b):
            page = await browser.get(f"{door}/login")
            blocked = await browser.post(f"{door}/login", data={
                "csrf_token": _field(page.text, "csrf_token"), "email": me.email, "password": PASSWORD})
            assert blocked.status_code == 429, blocked.status_code

    # The hosted checkout page's form token from one process pays on the other.
    async with cluster.a.async_client(key) as api:
        response = await api.post("/v1/checkout/sessions", json={
            "order": {"currency": "usd", "line_items": [{"name": "Hosted", "quantity": 1, "unit_amount": 900}]},
            "mode": "hosted", "success_url": "https://shop.example/thanks"})
    session = response.json()
    async with httpx.AsyncClient(follow_redirects=False, timeout=30) as buyer:
        page = await buyer.get(session["url"].replace(cluster.a.url, a))
        assert page.status_code == 200, page.text[:500]
        action = re.search(r'<form[^>]*method="post"[^>]*action="([^"]+)"', page.text).group(1)
        paid = await buyer.post(f"{b}{action}", data={
            "form_token": _field(page.text, "form_token"), "card_number": "4242 4242 4242 4242",
            "expiry": "12 / 34", "cvc": "123"})
    assert paid.status_code == 303, paid.text[:1000]
    order = await _one(rt, "SELECT status FROM orders WHERE id = :o", {"o": session["order_id"]})
    assert order["status"] == "paid"


# -- crash: one of two processes killed mid-load -------------------------------------------------------

class Load:
    """Threads that create a session and pay it, alternating between two servers, and remember
    every answer the client got: an acknowledged 200 means committed, so it must survive."""

    def __init__(self, servers: list[str], key: str) -> None:
        self.servers = servers
        self.key = key
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.orders: dict[str, str] = {}  # order id → "created" | "paid"
        self.payments: list[str] = []
        self.failures = 0
        self.n = itertools.count()

    def run(self) -> None:
        with httpx.Client(timeout=10) as http:
            while not self.stop.is_set():
                i = next(self.n)
                base = self.servers[i % len(self.servers)]
                try:
                    created = http.post(f"{base}/v1/checkout/sessions", headers={"Authorization": f"Bearer {self.key}"},
                                        json={"order": {"currency": "usd", "line_items": [
                                            {"name": "Load", "quantity": 1, "unit_amount": 500 + i}]},
                                              "mode": "embedded", "success_url": "https://shop.example/thanks"})
                    if created.status_code != 200:
                        raise httpx.HTTPError(f"create {created.status_code}")
                    session = created.json()
                    with self.lock:
                        self.orders[session["order_id"]] = "created"
                    paid = http.post(f"{base}/v1/checkout/sessions/{session['id']}/confirm",
                                     headers={"Authorization": f"Bearer {session['client_token']}"}, json={"card": CARD})
                    if paid.status_code == 200 and paid.json()["status"] == "succeeded":
                        with self.lock:
                            self.orders[session["order_id"]] = "paid"
                            self.payments.append(paid.json()["id"])
                except httpx.HTTPError:
                    with self.lock:
                        self.failures += 1
                    time.sleep(0.01)


async def test_killing_one_process_mid_load_loses_no_committed_order_payment_or_event(backend, tmp_path):
    cleanups: list = []
    db_url = fresh_database(backend, tmp_path, cleanups)
    a = start_server(tmp_path, db_url=db_url)
    b = start_server(tmp_path, db_url=db_url)
    runtime = await Runtime.start(Config(database_url=db_url, secret_keys=(TEST_SECRET,), env="development", public_url=a.url))
    try:
        _, key = await make_merchant(runtime)
        load = Load([a.url, b.url], key)
        threads = [threading.Thread(target=load.run) for _ in range(4)]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 30
        while len(load.payments) < 40 and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        a.process.send_signal(signal.SIGKILL)  # mid-request: no graceful shutdown, no flush
        killed_at = len(load.payments)
        while len(load.payments) < killed_at + 40 and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        load.stop.set()
        for thread in threads:
            thread.join(timeout=15)
        a.process.wait(timeout=10)
        assert a.process.returncode == -signal.SIGKILL
        assert len(load.payments) >= killed_at + 40, "the surviving process stopped serving"
        assert load.failures > 0, "the kill interrupted nothing"  # requests to the dead process failed

        async with runtime.db.read() as conn:
            orders = {r["id"]: r for r in await conn.fetch_all("SELECT id, status, amount_paid FROM orders")}
            payments = {r["id"]: r for r in await conn.fetch_all("SELECT id, order_id, status FROM payments")}
            events = Counter((r["order_id"], r["type"]) for r in await conn.fetch_all(
                "SELECT order_id, type FROM events WHERE order_id IS NOT NULL"))
        for order_id, state in load.orders.items():
            assert order_id in orders, f"acknowledged order {order_id} is gone"
            assert events[(order_id, "order.created")] == 1
            if state == "paid":
                assert orders[order_id]["status"] == "paid"
                assert events[(order_id, "payment.succeeded")] == 1 and events[(order_id, "order.paid")] == 1
        for payment_id in load.payments:
            assert payments[payment_id]["status"] == "succeeded", payments.get(payment_id)
        # Nothing half-done either: every paid order has exactly one succeeded payment.
        succeeded = Counter(p["order_id"] for p in payments.values() if p["status"] == "succeeded")
        assert all(succeeded[o] == 1 for o, r in orders.items() if r["status"] == "paid")
        assert all(n == 1 for n in succeeded.values())
        print(f"\n{backend}: {len(load.orders)} orders acknowledged, {len(load.payments)} payments, "
              f"{load.failures} requests cut off by the kill")
    finally:
        await runtime.stop()
        stop_server(b)
        for cleanup in cleanups:
            cleanup()


# -- two workers, one outbox ------------------------------------------------------------------------

EVENTS = 1000


async def test_two_workers_deliver_a_thousand_events_once_each(backend, tmp_path):
    from flint.actors import Actor
    from flint.events.service import record_all
    from flint.webhooks.service import create_endpoint
    from support.receiver import Receiver

    cleanups: list = []
    db_url = fresh_database(backend, tmp_path, cleanups)
    runtime = await Runtime.start(Config(database_url=db_url, secret_keys=(TEST_SECRET,), env="development", public_url="http://127.0.0.1:9"))
    receiver = Receiver().start()
    workers: list[subprocess.Popen] = []
    try:
        from flint.db.migrate import migrate

        await migrate(runtime.db)
        me, _ = await make_merchant(runtime)
        paths = [f"/two-workers-{n}" for n in (1, 2)]
        for path in paths:
            url = receiver.script(path, delay=0.005)
            await create_endpoint(runtime, me.id, url=url, events=["*"], description=None)
        # The outbox already holds 1,000 events × 2 endpoints when both workers start, so they race
        # for the same due rows from their first claim on.
        event_ids: list[str] = []
        for batch in range(EVENTS // 100):
            async with runtime.db.transaction() as conn:
                made = await record_all(conn, merchant_id=me.id, actor=Actor("merchant", me.id), items=[
                    ("order.created", {"id": f"ord_load{batch}_{i}", "object": "order"}) for i in range(100)])
            event_ids += [event.id for event in made]
        env = {"FLINT_WEBHOOK_POLL_INTERVAL": "0.02", "FLINT_WEBHOOK_CONCURRENCY": "16"}
        workers = [start_worker(tmp_path, db_url, env) for _ in range(2)]
        for path in paths:
            receiver.wait_for(path, EVENTS, timeout=90)
        await asyncio.sleep(1.0)  # anything sent twice would arrive in this time
        for worker in workers:
            stop_process(worker)

        for path in paths:
            ids = Counter(r.headers["webhook-id"] for r in receiver.at(path))
            assert set(ids) == set(event_ids), len(set(event_ids) - set(ids))
            twice = {i: n for i, n in ids.items() if n > 1}
            assert not twice, f"{len(twice)} events delivered more than once to {path}"
        async with runtime.db.read() as conn:
            states = Counter(r["status"] for r in await conn.fetch_all("SELECT status FROM webhook_deliveries"))
            succeeded_twice = await conn.fetch_all(
                """SELECT delivery_id FROM webhook_attempts WHERE status_code BETWEEN 200 AND 299
                   GROUP BY delivery_id HAVING COUNT(*) > 1""")
            attempts = (await conn.fetch_one("SELECT COUNT(*) AS n FROM webhook_attempts"))["n"]
        assert states == {"succeeded": 2 * EVENTS}, states
        assert succeeded_twice == [] and attempts == 2 * EVENTS
    finally:
        for worker in workers:
            stop_process(worker)
        receiver.stop()
        await runtime.stop()
        for cleanup in cleanups:
            cleanup()
