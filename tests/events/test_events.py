"""Events on both engines: an order's events are numbered in its own sequence with no gaps (the
order's counter hands the numbers out, orders.service.record_order_events), an event commits with its
change and its outbox deliveries or not at all, lists are newest first and filter by type, and a
merchant never reads another's event."""
from __future__ import annotations

import pytest

from flint.actors import SYSTEM, Actor
from flint.errors import FlintError
from flint.events import service as events
from flint.orders.service import record_order_events
from flint.webhooks import service as webhooks
from support.factories import make_merchant, make_order


async def test_an_orders_events_are_numbered_one_by_one_across_changes(rt):
    merchant, _ = await make_merchant(rt)
    first, second = await make_order(rt, merchant.id), await make_order(rt, merchant.id)
    async with rt.db.transaction() as conn:
        made = await record_order_events(conn, merchant_id=merchant.id, actor=SYSTEM, order_id=first.id,
                                         items=[("order.paid", {"id": first.id}), ("order.refunded", {"id": first.id})])
        other = await record_order_events(conn, merchant_id=merchant.id, actor=SYSTEM, order_id=second.id,
                                          items=[("order.paid", {"id": second.id})])
    # order.created was 1 for each; the counters are the orders' own.
    assert [e.sequence for e in made] == [2, 3] and [e.sequence for e in other] == [2]
    assert made[0].created_at < made[1].created_at  # listed in the change's own order
    async with rt.db.transaction() as conn:
        more = await record_order_events(conn, merchant_id=merchant.id, actor=SYSTEM, order_id=first.id,
                                         items=[("order.canceled", {"id": first.id})])
    assert [e.sequence for e in more] == [4]


async def test_an_event_and_its_deliveries_commit_together_or_not_at_all(rt):
    merchant, _ = await make_merchant(rt)
    await webhooks.create_endpoint(rt, merchant.id, url="http://127.0.0.1:9/all", events=["*"], description=None)
    order = await make_order(rt, merchant.id)
    with pytest.raises(RuntimeError):
        async with rt.db.transaction() as conn:
            await record_order_events(conn, merchant_id=merchant.id, actor=SYSTEM, order_id=order.id,
                                      items=[("order.paid", {"id": order.id})])
            raise RuntimeError("the change failed after its event was written")
    async with rt.db.read() as conn:
        paid = await conn.fetch_all("SELECT id FROM events WHERE order_id = :o AND type = 'order.paid'", {"o": order.id})
        queued = await conn.fetch_all("SELECT id FROM webhook_deliveries WHERE event_type = 'order.paid'")
        seq = await conn.fetch_one("SELECT event_seq FROM orders WHERE id = :o", {"o": order.id})
    assert paid == [] and queued == [] and seq["event_seq"] == 1  # only order.created, as before


async def test_lists_are_newest_first_filter_by_type_and_stay_with_their_merchant(rt):
    merchant, _ = await make_merchant(rt)
    stranger, _ = await make_merchant(rt)
    orders = [await make_order(rt, merchant.id) for _ in range(3)]
    listed, has_more = await events.list_events(rt, merchant.id, None, 2, None)
    assert [e.order_id for e in listed] == [orders[2].id, orders[1].id] and has_more
    rest, has_more = await events.list_events(rt, merchant.id, None, 2, listed[-1].id)
    assert [e.order_id for e in rest] == [orders[0].id] and not has_more
    assert [e.type for e in (await events.list_events(rt, merchant.id, "order.created", 10, None))[0]] == \
        ["order.created"] * 3
    assert (await events.list_events(rt, merchant.id, "order.paid", 10, None))[0] == []
    # An app reads only the types its scopes allow: an empty list of types is nothing at all.
    assert (await events.list_events(rt, merchant.id, None, 10, None, types=[]))[0] == []
    with pytest.raises(FlintError) as other:
        await events.get_event(rt, stranger.id, listed[0].id)
    assert (other.value.status, other.value.code) == (404, "event_not_found")
    assert (await events.get_event(rt, merchant.id, listed[0].id)).actor_type == "merchant"


async def test_an_event_of_no_order_has_no_sequence(rt):
    merchant, _ = await make_merchant(rt)
    async with rt.db.transaction() as conn:
        event = await events.record(conn, merchant_id=merchant.id, type="app.installed",
                                    actor=Actor("merchant", merchant.id), obj={"id": "inst_x", "app_id": "app_x"})
    assert (event.order_id, event.sequence) == (None, None)
