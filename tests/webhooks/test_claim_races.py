"""Several webhook workers on one database, as `flint worker` processes on one PostgreSQL (each a
Runtime of its own here, with its own pool): claims take disjoint deliveries and never wait on each
other, a delivery is sent once in normal running, and a late outcome never overwrites a newer claim.
On SQLite the same tests hold (claims are serialised by BEGIN IMMEDIATE)."""
from __future__ import annotations

import asyncio
from collections import Counter
from datetime import timedelta

import pytest

from flint import clock
from flint.actors import SYSTEM
from flint.events import service as events
from flint.runtime import Runtime
from flint.webhooks import service as webhooks
from flint.webhooks import store
from flint.background.webhook_worker import DeliveryWorker
from support.factories import make_merchant

from support.receiver import Receiver


@pytest.fixture
def other(second_rt: Runtime) -> Runtime:
    return second_rt


@pytest.fixture
def receiver():
    live = Receiver().start()
    yield live
    live.stop()


async def _backlog(rt: Runtime, n_events: int, urls: list[str]):
    merchant, _ = await make_merchant(rt)
    ids = []
    for url in urls:
        endpoint, _ = await webhooks.create_endpoint(rt, merchant.id, url=url, events=["*"], description=None)
        ids.append(endpoint.id)
    async with rt.db.transaction() as conn:
        await events.record_all(conn, merchant_id=merchant.id, actor=SYSTEM,
                                items=[("order.created", {"n": i}) for i in range(n_events)])
    return merchant, ids


async def _claim_in(conn, *, limit: int = 64, lease_seconds: float = 30, inflight: dict | None = None):
    now = clock.now()
    return await store.claim_due(conn, now=clock.iso(now + timedelta(seconds=1)),
                                 lease_until=clock.iso(now + timedelta(seconds=lease_seconds)),
                                 limit=limit, per_endpoint=16, inflight=inflight or {})


async def _claim(rt: Runtime, **kwargs):
    async with rt.db.transaction() as conn:
        return await _claim_in(conn, **kwargs)


def _ids(rows) -> set[str]:
    return {row["id"] for row in rows}


async def test_a_claim_in_progress_is_skipped_not_shared_or_waited_for(rt, other):
    await _backlog(rt, 40, ["http://127.0.0.1:9/a", "http://127.0.0.1:9/b"])  # 80 deliveries
    async with rt.db.transaction() as conn:
        mine = await _claim_in(conn, limit=16)
        theirs = asyncio.create_task(_claim(other))
        if rt.db.dialect == "postgresql":
            # SKIP LOCKED: the other process's claim returns while this one is still open, with
            # rows this one does not hold (a plain UPDATE would wait here, then lease them again).
            await asyncio.wait_for(asyncio.shield(theirs), 2)
        else:
            await asyncio.sleep(0.05)  # SQLite: it waits for this transaction, then sees its leases
    theirs_rows = await theirs
    assert len(mine) == 16 and theirs_rows
    assert not _ids(mine) & _ids(theirs_rows)


async def test_concurrent_claimers_in_two_processes_never_get_the_same_delivery(rt, other):
    await _backlog(rt, 60, ["http://127.0.0.1:9/a", "http://127.0.0.1:9/b", "http://127.0.0.1:9/c"])  # 180
    claims = await asyncio.gather(*(_claim(runtime, limit=24) for runtime in [rt, other] * 4))
    claimed = [row["id"] for rows in claims for row in rows]
    assert claimed, "nothing was claimed"
    assert len(claimed) == len(set(claimed)), "a delivery was leased by two claims"
    async with rt.db.read() as conn:
        leased = await conn.fetch_one("SELECT COUNT(*) AS n FROM webhook_deliveries WHERE lease_until IS NOT NULL")
    assert leased["n"] == len(claimed)


async def test_two_workers_send_each_delivery_once(rt, other, receiver):
    urls = [receiver.script("/one"), receiver.script("/two")]
    await _backlog(rt, 60, urls)  # 120 deliveries
    first, second = DeliveryWorker(rt), DeliveryWorker(other)
    for worker in (first, second):  # small claims, so that the two workers' claims interleave
        worker.concurrency, worker.per_endpoint = 16, 4
    try:
        await asyncio.gather(first.run_until_idle(10), second.run_until_idle(10))
        for worker in (first, second):  # one may have gone idle while the other still held leases
            await worker.run_until_idle(10)
    finally:
        await first.client.aclose()
        await second.client.aclose()
    sent = Counter((r.path, r.headers["webhook-id"]) for r in receiver.received)
    assert len(sent) == 120
    assert max(sent.values()) == 1, [key for key, n in sent.items() if n > 1][:5]
    async with rt.db.read() as conn:
        rows = await conn.fetch_all("SELECT status, attempts, lease_until FROM webhook_deliveries")
        attempts = await conn.fetch_one("SELECT COUNT(*) AS n FROM webhook_attempts")
    assert all(row["status"] == "succeeded" and row["attempts"] == 1 and row["lease_until"] is None for row in rows)
    assert attempts["n"] == 120


async def test_a_late_outcome_does_not_touch_a_delivery_claimed_again(rt):
    await _backlog(rt, 1, ["http://127.0.0.1:9/a"])
    # Worker A claims it under a lease that lapses (A is slow, or its flush is late) ...
    (stale,) = await _claim(rt, lease_seconds=-1)
    # ... so worker B claims it again and is now sending it.
    (fresh,) = await _claim(rt)
    assert fresh["id"] == stale["id"]
    async with rt.db.read() as conn:
        lease_b = (await conn.fetch_one("SELECT lease_until FROM webhook_deliveries WHERE id = :id",
                                        {"id": fresh["id"]}))["lease_until"]
    done = {"status": "succeeded", "attempts": 1, "lease_until": None, "next_attempt_at": None,
            "updated_at": clock.now_iso()}
    lease_a = clock.iso(clock.now() - timedelta(seconds=1))
    async with rt.db.transaction() as conn:
        # A's outcome must not clear B's lease (a third worker could then send it beside B).
        assert await store.record_result(conn, stale["id"], lease_a, done) == 0
    async with rt.db.read() as conn:
        row = await conn.fetch_one("SELECT status, lease_until FROM webhook_deliveries WHERE id = :id",
                                   {"id": fresh["id"]})
    assert row == {"status": "pending", "lease_until": lease_b}
    async with rt.db.transaction() as conn:
        assert await store.record_result(conn, fresh["id"], lease_b, done) == 1


async def test_a_delivery_left_pending_on_a_closed_endpoint_fails_instead_of_cycling(rt, receiver):
    # On PostgreSQL an event transaction can write a delivery while the endpoint's close commits
    # (close_endpoint fails the pending deliveries it sees, not that one). Made here directly.
    merchant, (endpoint_id,) = await _backlog(rt, 2, [receiver.script("/closed")])
    async with rt.db.transaction() as conn:
        await conn.execute("UPDATE webhook_endpoints SET status = 'disabled' WHERE id = :id", {"id": endpoint_id})
    worker = DeliveryWorker(rt)
    try:
        await worker.run_until_idle(5)
    finally:
        await worker.client.aclose()
    assert receiver.at("/closed") == []
    async with rt.db.read() as conn:
        rows = await conn.fetch_all("SELECT status, last_error, lease_until, attempts FROM webhook_deliveries")
    assert rows == [{"status": "failed", "last_error": "endpoint_disabled", "lease_until": None, "attempts": 0}] * 2


async def test_two_secret_rotations_at_once_chain(rt, other):
    merchant, (endpoint_id,) = await _backlog(rt, 0, ["http://127.0.0.1:9/a"])
    rotated = await asyncio.gather(*(webhooks.rotate_secret(runtime, merchant.id, endpoint_id)
                                     for runtime in (rt, other, rt, other)))
    given = {secret for _, secret in rotated}
    endpoint = await webhooks.get_endpoint(rt, merchant.id, endpoint_id)
    current, previous = rt.secrets.open(endpoint.secret), rt.secrets.open(endpoint.previous_secret)
    # The last rotation's secret signs, beside the one before it: both were handed out, so the
    # caller given the previous one can still verify for the overlap (not the original secret).
    assert current in given and previous in given and current != previous
