"""Authorize now, capture later (docs/api.md 17): capture, void and expiry of an authorized payment.

Like a payment and a refund, each runs in short transactions with no network call inside any of them:

1. *Claim*: lock the order, then the payment, and claim the authorization (``payments.pending_action``,
   a conditional UPDATE only the first of a capture, a void or the sweeper's expiry can win; the others are
   answered 409).
2. *Ask the processor*: capture or void under Flint's payment id (the processor's idempotency key).
3. *Finish*: lock the order again and record the outcome: captured (payment ``succeeded`` for the captured
   amount, the order ``paid``, the receipt) or canceled (payment ``canceled``, the order ``open`` again).

A processor that does not answer leaves the claim standing (the outcome is unknown: the money may have
moved) and the sweeper asks again under the same payment id (``redrive_claims``); nobody else can decide
on that authorization meanwhile. The partial unique index on authorized-or-succeeded payments keeps at
most one per order whatever happens.
"""
from __future__ import annotations

import asyncio
import logging

from flint import clock
from flint.actors import SYSTEM, Actor
from flint.collect import receipts
from flint.db import Conn
from flint.errors import FlintError, conflict, invalid, not_found
from flint.orders import store as order_store
from flint.orders.models import AUTHORIZED as ORDER_AUTHORIZED
from flint.orders.models import OPEN as ORDER_OPEN
from flint.orders.service import record_order_events
from flint.payments import store
from flint.payments.models import AUTHORIZED, CAPTURE, EXPIRE, VOID, Payment
from flint.processors import FAILURE_MESSAGES, ChargeResult
from flint.runtime import Runtime

log = logging.getLogger("flint.payments")

CAPTURED, CANCELED_RESULT = "succeeded", "canceled"
AUTHORIZATION_EXPIRED = "authorization_expired"
_EXPIRED_MESSAGE = "The authorization expired before it was captured."


async def capture_payment(rt: Runtime, merchant_id: str, payment_id: str, actor: Actor,
                          amount: int | None = None) -> Payment:
    """Capture an authorized payment: all of it (``amount`` None) or part (the rest is released).
    409 ``payment_not_capturable`` unless it is authorized and nobody else is deciding on it."""
    return await asyncio.shield(_decide(rt, merchant_id, payment_id, actor, CAPTURE, amount))


async def void_payment(rt: Runtime, merchant_id: str, payment_id: str, actor: Actor) -> Payment:
    """Cancel an authorized payment: nothing is taken, the order is open again.
    409 ``payment_not_voidable`` unless it is authorized and nobody else is deciding on it."""
    return await asyncio.shield(_decide(rt, merchant_id, payment_id, actor, VOID, None))


def _refuse(action: str, payment: Payment) -> FlintError:
    code = "payment_not_capturable" if action == CAPTURE else "payment_not_voidable"
    verb = "captured" if action == CAPTURE else "voided"
    if payment.status == AUTHORIZED and payment.pending_action is not None:
        busy = {CAPTURE: "a capture", VOID: "a void", EXPIRE: "its expiry"}[payment.pending_action]
        return conflict(code, f"This payment cannot be {verb}: {busy} is under way.")
    return conflict(code, f"Only authorized payments can be {verb}; this one is {payment.status}.")


async def _lock(conn: Conn, merchant_id: str, payment_id: str) -> Payment | None:
    """The order's lock, then the payment's, re-read under it (the house order of locks). Another
    merchant's payment is not found."""
    found = await store.select_payment(conn, merchant_id, payment_id)
    if found is None:
        return None
    await order_store.select_order_by_id(conn, found.order_id, for_update=True)
    return await store.select_payment(conn, found.merchant_id, found.id, for_update=True)


async def _decide(rt: Runtime, merchant_id: str, payment_id: str, actor: Actor, action: str,
                  amount: int | None) -> Payment:
    if amount is not None and amount <= 0:
        raise invalid("amount_too_small", "A capture amount must be a positive integer.", "amount")
    now = clock.now_iso()
    async with rt.db.transaction() as conn:
        payment = await _lock(conn, merchant_id, payment_id)
        if payment is None:
            raise not_found("payment", payment_id)
        if payment.status != AUTHORIZED or payment.pending_action is not None:
            raise _refuse(action, payment)
        authorized = payment.amount_authorized or payment.amount
        if action == CAPTURE:
            amount = authorized if amount is None else amount
            if amount > authorized:
                raise FlintError(400, "amount_too_large", f"At most {authorized} can be captured.", param="amount",
                                 extra={"amount_capturable": authorized})
        if not await store.claim_authorization(conn, payment.id, action, amount, now):
            raise _refuse(action, payment)  # cannot happen under the order's lock; the claim is the proof
    return await _ask_and_finish(rt, payment, action, amount, actor, answer_caller=True)


async def _ask_and_finish(rt: Runtime, payment: Payment, action: str, amount: int | None, actor: Actor, *,
                          answer_caller: bool) -> Payment:
    try:
        async with asyncio.timeout(rt.config.processor_timeout_seconds):
            if action == CAPTURE:
                assert amount is not None
                result = await rt.processor.capture(payment.id, payment.processor_ref, amount, payment.currency)
            else:
                result = await rt.processor.void(payment.id, payment.processor_ref)
                if result is None:  # a processor of the old interface: a void that returned is done
                    result = ChargeResult(CANCELED_RESULT, payment.processor_ref)
    except Exception:
        log.exception("processor %s failed; outcome unknown", action, extra={"payment_id": payment.id})
        result = None
    if result is None or result.status not in (CAPTURED, CANCELED_RESULT, "failed"):
        # Unknown: the money may have moved. The claim stands and the sweeper asks again.
        if answer_caller:
            raise FlintError(503, "processor_unavailable",
                             "The card processor did not answer. Nothing will be taken twice: the capture or "
                             "void is retried by Flint.", headers={"Retry-After": "60"},
                             extra={"payment_id": payment.id})
        return payment
    return await _finish(rt, payment, action, amount, result, actor, answer_caller=answer_caller)


async def _finish(rt: Runtime, payment: Payment, action: str, amount: int | None, result: ChargeResult,
                  actor: Actor, *, answer_caller: bool) -> Payment:
    now = clock.now_iso()
    refused = None
    async with rt.db.transaction() as conn:
        current = await _lock(conn, payment.merchant_id, payment.id)
        assert current is not None
        if current.status != AUTHORIZED or current.pending_action != action:
            return current  # settled already (a re-drive and its original crossed): nothing more to do
        order = await order_store.select_order_by_id(conn, current.order_id)
        assert order is not None
        items: list[tuple[str, dict]] = []
        if action == CAPTURE and result.status == CAPTURED:
            assert amount is not None
            await store.finish_capture(conn, current.id, amount, result.processor_ref, now)
            if not await order_store.mark_authorized_order_paid(conn, order.id, amount, now):
                raise RuntimeError(f"order {order.id} was not authorized under its payment {current.id}")
            final = await store.select_payment(conn, current.merchant_id, current.id)
            paid = await order_store.select_order_by_id(conn, order.id)
            assert final is not None and paid is not None
            items += [("payment.captured", final.to_dict()), ("order.paid", paid.to_dict())]
            await record_order_events(conn, merchant_id=order.merchant_id, actor=actor, items=items, order_id=order.id)
            # The receipt goes out when the order is paid: for manual capture, now (docs/api.md 16, 17).
            await receipts.enqueue_receipt(conn, rt.config, paid, final, locale=None, paid_at=now)
            return final
        expired_at_processor = action == CAPTURE and result.failure_code == AUTHORIZATION_EXPIRED
        if action == CAPTURE and not expired_at_processor:
            # Declined: the authorization stands, free for another capture or a void.
            await store.release_claim(conn, current.id, CAPTURE, now)
            refused = FlintError(402, "capture_failed", FAILURE_MESSAGES.get(result.failure_code or "", None)
                                 or "The processor refused the capture.",
                                 extra={"failure_code": result.failure_code or "processing_error"})
        elif action != CAPTURE and result.status != CANCELED_RESULT:
            await store.release_claim(conn, current.id, action, now)
            refused = FlintError(502, "void_failed", "The processor refused to void this authorization.",
                                 extra={"failure_code": result.failure_code or "processing_error"})
        else:
            expired = action == EXPIRE or expired_at_processor
            await store.finish_cancel(conn, current.id, AUTHORIZATION_EXPIRED if expired else None,
                                      _EXPIRED_MESSAGE if expired else None,
                                      None if expired_at_processor else result.processor_ref, now)
            await order_store.update_order_status(conn, order.id, from_status=ORDER_AUTHORIZED,
                                                  to_status=ORDER_OPEN, at=now)
            final = await store.select_payment(conn, current.merchant_id, current.id)
            assert final is not None
            await record_order_events(conn, merchant_id=order.merchant_id, actor=actor,
                                      items=[("payment.voided", final.to_dict())], order_id=order.id)
            if not expired_at_processor:
                return final
            current = final
            refused = conflict("payment_not_capturable", _EXPIRED_MESSAGE)
    if answer_caller and refused is not None:
        raise refused
    return current


async def expire_authorizations(rt: Runtime, batch: int = 100) -> int:
    """Sweeper step: void authorizations older than ``authorization_ttl_seconds``. Safe beside other
    sweepers and beside captures: each is claimed under its order's lock (skipped while another holds it)."""
    before = clock.later_iso(-rt.config.authorization_ttl_seconds)
    async with rt.db.read() as conn:
        due = await store.select_due_authorizations(conn, before, batch)
    expired = 0
    for found in due:
        async with rt.db.transaction() as conn:
            order = await order_store.select_order_by_id(conn, found.order_id, for_update=True, skip_locked=True)
            payment = await store.select_payment(conn, found.merchant_id, found.id, for_update=True) if order else None
            claimed = (payment is not None and payment.status == AUTHORIZED and payment.pending_action is None
                       and (payment.authorized_at or "") <= before
                       and await store.claim_authorization(conn, payment.id, EXPIRE, None, clock.now_iso()))
        if claimed:
            assert payment is not None
            done = await _ask_and_finish(rt, payment, EXPIRE, None, SYSTEM, answer_caller=False)
            expired += done.status != AUTHORIZED
    return expired


async def redrive_claims(rt: Runtime, older_than: float, batch: int = 100) -> int:
    """Sweeper step: a capture, void or expiry whose process died, or whose processor did not answer, is
    asked again under the same payment id (the processor's idempotency key), so its outcome settles."""
    before = clock.later_iso(-older_than)
    async with rt.db.read() as conn:
        stale = await store.select_stale_claims(conn, before, batch)
    settled = 0
    for found in stale:
        async with rt.db.transaction() as conn:
            order = await order_store.select_order_by_id(conn, found.order_id, for_update=True, skip_locked=True)
            payment = await store.select_payment(conn, found.merchant_id, found.id, for_update=True) if order else None
            taken = (payment is not None and payment.pending_action is not None
                     and (payment.pending_since or "") <= before
                     and await store.touch_claim(conn, payment.id, payment.pending_action, clock.now_iso()))
        if taken:
            assert payment is not None and payment.pending_action is not None
            known = await _look_up(rt, payment)
            if known is not None:  # the processor says what became of it: record that, ask nothing again
                done = await _finish(rt, payment, payment.pending_action, _captured_amount(payment, known), known,
                                     SYSTEM, answer_caller=False)
            else:
                done = await _ask_and_finish(rt, payment, payment.pending_action, payment.pending_amount, SYSTEM,
                                             answer_caller=False)
            settled += done.status != AUTHORIZED
    return settled


async def _look_up(rt: Runtime, payment: Payment) -> ChargeResult | None:
    """What the processor says now of a claimed capture or void whose answer never came (its look-up by
    Flint's payment id): the settled outcome when it already happened there, else None (still authorized,
    or the processor cannot tell: then the action is asked again under the same idempotency key)."""
    look_up = getattr(rt.processor, "lookup", None)
    if look_up is None:
        return None
    try:
        async with asyncio.timeout(rt.config.processor_timeout_seconds):
            found = await look_up(payment.id, payment.processor_ref)
    except Exception:
        log.exception("processor lookup failed; asked again later", extra={"payment_id": payment.id})
        return None
    if payment.pending_action == CAPTURE and found.status == CAPTURED:
        return found
    if payment.pending_action in (VOID, EXPIRE) and found.status == CANCELED_RESULT:
        return found
    return None


def _captured_amount(payment: Payment, found: ChargeResult) -> int | None:
    """The amount the processor says it captured; the claimed amount when it does not say."""
    if payment.pending_action != CAPTURE:
        return None
    return found.amount if found.amount is not None and 0 < found.amount <= payment.amount else payment.pending_amount
