"""Refunds: full or partial, by payment or by order, never more than was paid.

Like payments, a refund runs in three steps with no network call inside a transaction:
reserve the amount (a conditional UPDATE on the payment is the limit, so racing refunds can
never together exceed it; the order is locked first, so a loser sees the winners' reservations and
is refused with the same code as on SQLite), call the processor, then settle. A refund whose
process died after reserving stays ``pending`` and is re-driven by the sweeper with the same
refund id, which is the processor's idempotency key.
"""
from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from flint import clock
from flint.actors import Actor
from flint.errors import FlintError, conflict, invalid, not_found
from flint.ids import new_id
from flint.orders import store as order_store
from flint.orders.service import record_order_event
from flint.payments import store as payment_store
from flint.payments.models import SUCCEEDED as PAYMENT_SUCCEEDED
from flint.processors import RefundResult
from flint.refunds import store
from flint.refunds.models import FAILED, PENDING, REASONS, SUCCEEDED, Refund
from flint.runtime import Runtime

log = logging.getLogger("flint.refunds")


@dataclass
class NewRefund:
    payment_id: str | None = None
    order_id: str | None = None
    amount: int | None = None
    reason: str | None = None


async def issue_refund(rt: Runtime, merchant_id: str, new: NewRefund, actor: Actor) -> Refund:
    """Refund a payment. Shielded: a caller that hangs up never leaves money reserved mid-refund."""
    return await asyncio.shield(_issue(rt, merchant_id, new, actor))


async def _issue(rt: Runtime, merchant_id: str, new: NewRefund, actor: Actor) -> Refund:
    if (new.payment_id is None) == (new.order_id is None):
        raise invalid("refund_target_invalid", "Give exactly one of 'payment' or 'order'.", "payment")
    if new.reason is not None and new.reason not in REASONS:
        raise invalid("reason_invalid", f"reason must be one of {', '.join(REASONS)}.", "reason")
    if new.amount is not None and new.amount <= 0:
        raise invalid("amount_too_small", "A refund amount must be a positive integer.", "amount")
    now = clock.now_iso()
    async with rt.db.transaction() as conn:
        # Locks the order, then the payment: a racing refund waits here and then sees this one's
        # reservation, so it is refused with the same code as on a serialised database.
        if new.payment_id is not None:
            found = await payment_store.select_payment(conn, merchant_id, new.payment_id)
            if found is None:
                raise not_found("payment", new.payment_id, param="payment")
            await order_store.select_order_by_id(conn, found.order_id, for_update=True)
            payment = await payment_store.select_payment(conn, merchant_id, found.id, for_update=True)
            assert payment is not None
        else:
            assert new.order_id is not None
            order = await order_store.select_order(conn, merchant_id, new.order_id, for_update=True)
            if order is None:
                raise not_found("order", new.order_id, param="order")
            payment = await payment_store.select_succeeded_payment_of_order(conn, order.id, for_update=True)
            if payment is None:
                raise conflict("order_not_paid", "This order has no successful payment to refund.")
        if payment.status != PAYMENT_SUCCEEDED:
            raise conflict("payment_not_refundable", f"Only succeeded payments can be refunded; this one is {payment.status}.")
        refundable = payment.amount_refundable
        if refundable <= 0:
            raise conflict("charge_already_refunded", "Everything paid has already been refunded (or is being refunded).")
        amount = refundable if new.amount is None else new.amount
        if amount > refundable:
            raise FlintError(400, "refund_exceeds_refundable",
                             f"At most {refundable} can still be refunded.", param="amount",
                             extra={"amount_refundable": refundable})
        if not await payment_store.reserve_refund(conn, payment.id, amount, now):
            raise FlintError(400, "refund_exceeds_refundable", "The refund exceeds what can still be refunded.",
                             param="amount")
        refund = Refund(
            id=new_id("re"), merchant_id=merchant_id, payment_id=payment.id, order_id=payment.order_id,
            amount=amount, currency=payment.currency, status=PENDING, reason=new.reason, failure_code=None,
            processor_ref=None, created_at=now, updated_at=now, created_by_type=actor.type,
            created_by_id=actor.id)
        await store.insert_refund(conn, refund)
    return await _drive(rt, refund, payment.processor_ref or "", actor)


async def _drive(rt: Runtime, refund: Refund, charge_ref: str, actor: Actor) -> Refund:
    try:
        async with asyncio.timeout(rt.config.processor_timeout_seconds):
            result = await rt.processor.refund(charge_ref, refund.amount, refund.currency, refund.id)
    except Exception:
        # Unknown outcome: the money may have moved. The refund stays pending (its amount stays
        # reserved) and the sweeper asks again under the same refund id, the processor's
        # idempotency key; calling it "failed" would let the merchant refund the money twice.
        log.exception("processor refund call failed; outcome unknown", extra={"refund_id": refund.id})
        return refund
    return await _settle(rt, refund, result, actor)


async def _settle(rt: Runtime, refund: Refund, result: RefundResult, actor: Actor) -> Refund:
    now = clock.now_iso()
    succeeded = result.status == SUCCEEDED
    async with rt.db.transaction() as conn:
        # Locks the order first, as issue_refund does (it then takes the payment): the same order
        # of locks everywhere, so a refund settling beside a new one waits instead of deadlocking.
        await order_store.select_order_by_id(conn, refund.order_id, for_update=True)
        changed = await store.finish_refund(
            conn, refund.id, status=SUCCEEDED if succeeded else FAILED, processor_ref=result.processor_ref,
            failure_code=None if succeeded else (result.failure_code or "refund_failed"), now=now)
        final = await store.select_refund(conn, refund.merchant_id, refund.id)
        assert final is not None
        if not changed:  # someone else (the sweeper) settled it first
            return final
        await payment_store.settle_refund(conn, refund.payment_id, refund.amount, succeeded, now)
        if succeeded:
            await order_store.add_order_refund(conn, refund.order_id, refund.amount, now)
            await record_order_event(conn, merchant_id=refund.merchant_id, type="refund.succeeded", actor=actor,
                                obj=final.to_dict(), order_id=refund.order_id)
            order = await order_store.select_order_by_id(conn, refund.order_id)
            assert order is not None
            await record_order_event(conn, merchant_id=refund.merchant_id, type="order.refunded", actor=actor,
                                obj=order.to_dict(), order_id=refund.order_id)
        else:
            await record_order_event(conn, merchant_id=refund.merchant_id, type="refund.failed", actor=actor,
                                obj=final.to_dict(), order_id=refund.order_id)
    return final


async def redrive_stale(rt: Runtime, actor: Actor, older_than: float, batch: int = 50) -> int:
    """Sweeper step: finish refunds whose process died between reserve and settle. Each is claimed
    first (locked, skipping others' claims, and touched), so concurrent sweepers split them and a
    refund is asked again at most once per ``older_than``."""
    async with rt.db.transaction() as conn:
        stale = await store.claim_stale_pending(conn, clock.later_iso(-older_than), clock.now_iso(), batch)
    for refund in stale:
        async with rt.db.read() as conn:
            payment = await payment_store.select_payment(conn, refund.merchant_id, refund.payment_id)
        await _drive(rt, refund, (payment.processor_ref if payment else "") or "", actor)
    return len(stale)


async def get_refund(rt: Runtime, merchant_id: str, refund_id: str) -> Refund:
    async with rt.db.read() as conn:
        refund = await store.select_refund(conn, merchant_id, refund_id)
    if refund is None:
        raise not_found("refund", refund_id)
    return refund


async def list_refunds(rt: Runtime, merchant_id: str, limit: int, starting_after: str | None):
    async with rt.db.read() as conn:
        return await store.select_refunds_page(conn, merchant_id, limit, starting_after)
