"""Rewriting an order's stored events for an erasure (events.service.rewrite_order_events, on both
engines): only that order's events change, only those the transform changes are written, the text keeps
the form events are stored and signed in, and the webhook deliveries (which keep no copy of a body) are
left as they are, so a pending one carries the rewritten data when it is sent."""
from __future__ import annotations

import json

from flint.actors import SYSTEM
from flint.events import service as events
from flint.orders.service import erase_buyer_data, record_order_events
from flint.webhooks import service as webhooks
from support.factories import make_merchant, make_order

SECRET = "ada@example.com"


def drop_secret(data: dict) -> dict:
    obj = data["object"]
    return {"object": {**obj, "customer_email": None}} if "customer_email" in obj else data


async def stored(rt, order_id: str) -> dict[str, str]:
    async with rt.db.read() as conn:
        rows = await conn.fetch_all("SELECT id, data FROM events WHERE order_id = :o", {"o": order_id})
    return {row["id"]: row["data"] for row in rows}


async def test_only_the_orders_changed_events_are_rewritten_in_the_stored_form(rt):
    merchant, _ = await make_merchant(rt)
    await webhooks.create_endpoint(rt, merchant.id, url="http://127.0.0.1:9/all", events=["*"], description=None)
    mine, other = await make_order(rt, merchant.id), await make_order(rt, merchant.id)
    async with rt.db.transaction() as conn:
        for order in (mine, other):
            await record_order_events(conn, merchant_id=merchant.id, actor=SYSTEM, order_id=order.id, items=[
                ("order.paid", {**order.to_dict(), "customer_email": SECRET}),
                ("payment.succeeded", {"object": "payment", "id": "pay_1", "card": {"brand": "visa", "last4": "4242"}}),
            ])
    async with rt.db.read() as conn:
        deliveries_before = await conn.fetch_all("SELECT * FROM webhook_deliveries ORDER BY id")
    mine_before, other_before = await stored(rt, mine.id), await stored(rt, other.id)

    async with rt.db.transaction() as conn:
        changed = await events.rewrite_order_events(conn, mine.id, drop_secret)

    assert changed == 1  # order.paid; order.created had no email, the payment nothing to drop
    mine_after = await stored(rt, mine.id)
    rewritten = {event_id for event_id in mine_after if mine_after[event_id] != mine_before[event_id]}
    assert len(rewritten) == 1 and SECRET not in "".join(mine_after.values())
    data = mine_after[rewritten.pop()]
    assert data == json.dumps(json.loads(data), separators=(",", ":"), sort_keys=True)  # the stored, signed form
    assert await stored(rt, other.id) == other_before and SECRET in "".join(other_before.values())
    async with rt.db.read() as conn:
        assert await conn.fetch_all("SELECT * FROM webhook_deliveries ORDER BY id") == deliveries_before


def test_the_erasure_walks_every_order_snapshot_and_leaves_other_objects():
    order = {"object": "order", "id": "ord_1", "status": "paid", "amount_paid": 900, "customer_email": SECRET,
             "customer": {"email": SECRET, "name": "Ada Lovelace"}, "custom_fields": {"gift_note": "x"},
             "metadata": {"cart": "c_1"}, "reference": "A-1",
             "extension_data": {"app_1": {"checked": True, "fields": {"birth_date": "1815-12-10"}}, "app_2": "plain"}}
    session = {"object": "checkout.session", "id": "cs_1",
               "custom_fields": [{"key": "gift_note", "label": "Gift note", "type": "text", "required": False}]}
    payment = {"object": "payment", "id": "pay_1", "card": {"brand": "visa", "last4": "4242"}}
    old = {"object": "order", "id": "ord_1", "status": "open", "customer_email": SECRET}  # before buyer details
    data = {"object": order, "related": [session, payment, {"nested": old}]}
    erased = erase_buyer_data(data)
    assert erased["object"] == {**order, "customer_email": None, "customer": None, "custom_fields": {},
                                "extension_data": {"app_1": {"checked": True}, "app_2": "plain"}}
    assert erased["related"][:2] == [session, payment]  # a session's field specs are questions, not answers
    assert erased["related"][2] == {"nested": {**old, "customer_email": None}}  # no keys it never had
    assert data["object"]["customer"] is not None  # a copy: the input is left as it was
