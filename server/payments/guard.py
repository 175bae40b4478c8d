"""The order guard's shared moves: freeing an order from an earlier payment attempt.

Payments, order cancel, session expiry and the sweeper all need them, so they live apart from
the confirm service (which imports checkout) to keep the imports one-way.
"""
from __future__ import annotations

import asyncio
import logging

from flint import clock
from flint.actors import SYSTEM, Actor
from flint.db import Conn
from flint.errors import conflict
from flint.orders import store as order_store
from flint.orders.models import Order
from flint.orders.service import record_order_event
from flint.payments import store
from flint.payments.models import FAILED, PROCESSING, REQUIRES_ACTION, Payment
from flint.processors import FAILURE_MESSAGES
from flint.runtime import Runtime

log = logging.getLogger("flint.payments")


async def _fail_payment(conn: Conn, payment: Payment, code: str, actor: Actor) -> Payment | None:
    now = clock.now_iso()
    changed = await store.update_payment_result(
        conn, payment.id, from_status=payment.status, status=FAILED, processor_ref=None,
        failure_code=code, failure_message=FAILURE_MESSAGES.get(code), now=now)
    if not changed:
        return None
    failed = await store.select_payment(conn, payment.merchant_id, payment.id)
    assert failed is not None
    await record_order_event(conn, merchant_id=payment.merchant_id, type="payment.failed", actor=actor,
                        obj=failed.to_dict(), order_id=payment.order_id)
    return failed


async def abandon_attempt(conn: Conn, order: Order, payment: Payment | None, code: str) -> Payment | None:
    """Free the order from its attempt: drop the lease, fail the payment if still unfinished."""
    assert order.attempt_payment_id is not None
    await order_store.release_attempt_lease(conn, order.id, order.attempt_payment_id, clock.now_iso())
    if payment is not None and payment.status in (PROCESSING, REQUIRES_ACTION):
        log.warning("payment attempt abandoned", extra={"payment_id": payment.id, "failure_code": code})
        return await _fail_payment(conn, payment, code, SYSTEM)
    return None


async def clear_guard(conn: Conn, order: Order, now: str) -> Payment | None:
    """Make way on an order held by an earlier attempt, where that attempt may be displaced: its
    lease lapsed (it died mid-way), or it waits on a 3-D Secure challenge (the buyer may always
    change their mind and pay another way). An attempt still talking to the processor is never
    displaced. Returns the payment it failed, to be voided once the transaction commits."""
    if order.attempt_payment_id is None:
        return None
    payment = await store.select_payment(conn, order.merchant_id, order.attempt_payment_id)
    live = order.attempt_live(now)
    if live and (payment is None or payment.status != REQUIRES_ACTION):
        raise conflict("payment_in_progress", "Another payment attempt for this order is in progress.")
    return await abandon_attempt(conn, order, payment, "authentication_abandoned" if live else "payment_attempt_expired")


async def void_quietly(rt: Runtime, payment: Payment | None) -> None:
    """Release whatever a failed attempt may hold at the processor. Best effort: the payment is
    already failed in Flint, and a void error must not turn the buyer's next attempt into a 500."""
    if payment is None:
        return
    try:
        async with asyncio.timeout(rt.config.processor_timeout_seconds):
            await rt.processor.void(payment.id, payment.processor_ref)
    except Exception:
        log.exception("processor void failed", extra={"payment_id": payment.id})
