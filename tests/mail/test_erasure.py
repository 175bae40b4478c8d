"""An order's redaction (POST /v1/orders/{id}/redact, docs/api.md 14) reaches its mails: in the same
transaction every mail of the order forgets the buyer's address, one still waiting is never sent, and the
email.sent event of a mail already sent no longer names the address. Another order's mails are untouched."""
from __future__ import annotations

import json

from flint.actors import Actor
from flint.background import mail_worker
from flint.closing import service as closing
from flint.mail.models import PENDING, SENT, SUPPRESSED
from flint.orders import service as orders
from support.factories import make_merchant, make_order

from .conftest import enqueue

BUYER = "erase.me@example.com"


async def _mails(rt, order_id: str) -> list[dict]:
    async with rt.db.read() as conn:
        return [dict(row) for row in await conn.fetch_all(
            "SELECT to_address, status FROM emails WHERE order_id = :o ORDER BY created_at, id", {"o": order_id})]


async def _email_events(rt, merchant_id: str, order_id: str) -> list[dict]:
    found, _ = await orders.list_order_events(rt, merchant_id, order_id, 0, 100)
    return [json.loads(event.data)["object"] for event in found if event.type.startswith("email.")]


async def test_redacting_an_order_erases_its_mails_addresses_and_stops_the_waiting_ones(mail_rt, smtp):
    merchant, _ = await make_merchant(mail_rt)
    order = await make_order(mail_rt, merchant.id)
    other = await make_order(mail_rt, merchant.id)
    await enqueue(mail_rt, merchant.id, order_id=order.id, to=BUYER)
    assert await mail_worker.send_due(mail_rt)
    assert len(smtp.received()) == 1
    assert [event["to"] for event in await _email_events(mail_rt, merchant.id, order.id)] == [BUYER]
    # A second mail of the order waits (the worker is not running); another order's mail too.
    await enqueue(mail_rt, merchant.id, order_id=order.id, to=BUYER)
    await enqueue(mail_rt, merchant.id, order_id=other.id, to=BUYER)

    await closing.redact_order(mail_rt, merchant.id, order.id, Actor("merchant", merchant.id))

    assert await _mails(mail_rt, order.id) == [{"to_address": "", "status": SENT},
                                                {"to_address": "", "status": SUPPRESSED}]
    assert [event["to"] for event in await _email_events(mail_rt, merchant.id, order.id)] == [None]
    assert await _mails(mail_rt, other.id) == [{"to_address": BUYER, "status": PENDING}]
    assert await mail_worker.send_due(mail_rt)
    # Only the other order's mail went; nothing more to the erased order's buyer.
    assert len(smtp.received()) == 2
    assert await _mails(mail_rt, order.id) == [{"to_address": "", "status": SENT},
                                                {"to_address": "", "status": SUPPRESSED}]
