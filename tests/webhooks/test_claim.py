"""The worker's claim (store.claim_due) on a real SQLite database: oldest due first, never more
than the per-endpoint limit in flight, busy endpoints skipped, leases respected."""
from __future__ import annotations

from collections import Counter
from datetime import timedelta

from flint import clock
from flint.actors import SYSTEM
from flint.events import service as events
from flint.webhooks import service as webhooks
from flint.webhooks import store
from support.factories import make_merchant


async def _backlog(rt, per_endpoint_events: int, endpoints: int = 2):
    merchant, _ = await make_merchant(rt)
    ids = []
    for n in range(endpoints):
        endpoint, _ = await webhooks.create_endpoint(rt, merchant.id, url=f"http://127.0.0.1:9/{n}", events=["*"],
                                                     description=None)
        ids.append(endpoint.id)
    async with rt.db.transaction() as conn:
        await events.record_all(conn, merchant_id=merchant.id, actor=SYSTEM,
                                items=[("order.created", {"n": i}) for i in range(per_endpoint_events)])
    return ids


async def _claim(rt, **kwargs):
    now = clock.now()
    async with rt.db.transaction() as conn:
        return await store.claim_due(conn, now=clock.iso(now + timedelta(seconds=1)),
                                     lease_until=clock.iso(now + timedelta(seconds=30)), **kwargs)


async def test_a_claim_leaves_each_endpoint_at_most_its_limit_in_flight(rt):
    first, second = await _backlog(rt, 40)
    claimed = await _claim(rt, limit=64, per_endpoint=16, inflight={first: 10})
    per = Counter(row["endpoint_id"] for row in claimed)
    assert per == {first: 6, second: 16}  # 10 already sending + 6 = 16
    again = await _claim(rt, limit=64, per_endpoint=16, inflight={first: 16, second: 16})
    assert again == []  # both at their limit: nothing more
    third = await _claim(rt, limit=64, per_endpoint=16, inflight={first: 16})
    assert Counter(row["endpoint_id"] for row in third) == {second: 16}  # leased rows are not claimed twice


async def test_a_claim_takes_the_oldest_due_first_and_respects_the_limit(rt):
    await _backlog(rt, 30, endpoints=1)
    claimed = await _claim(rt, limit=5, per_endpoint=16, inflight={})
    assert len(claimed) == 5
    async with rt.db.read() as conn:
        oldest = await conn.fetch_all("SELECT id FROM webhook_deliveries ORDER BY next_attempt_at, id LIMIT 30")
    assert {row["id"] for row in claimed} <= {row["id"] for row in oldest}
    assert all(row["attempts"] == 0 and row["final_attempt"] == 0 for row in claimed)


async def test_nothing_is_claimed_before_it_is_due(rt):
    await _backlog(rt, 3, endpoints=1)
    now = clock.now()
    async with rt.db.transaction() as conn:
        claimed = await store.claim_due(conn, now=clock.iso(now - timedelta(seconds=60)),
                                        lease_until=clock.iso(now), limit=10, per_endpoint=16, inflight={})
    assert claimed == []
