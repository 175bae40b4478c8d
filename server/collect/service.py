"""Payments: the one confirm path every channel (embedded, hosted, payment link) calls.

The order guard, in three short transactions with no network call inside any of them:

1. *Begin*: in one write transaction, lock the order (``FOR UPDATE`` on PostgreSQL; SQLite's
   ``BEGIN IMMEDIATE`` already serialises), check the channel and the order, take the order's
   attempt lease (a conditional UPDATE only one attempt can win) and record the payment as
   ``processing``. Every transaction that decides on an order's payments, sessions, links or
   refunds locks the order row first, so they queue on it in one order and never deadlock.
2. *Charge*: call the processor, outside any transaction.
3. *Settle*: in one write transaction, and only if this attempt still holds the lease, record
   the outcome, mark the order paid and write the events.

A process that dies between 1 and 3 leaves a lease that lapses (``payment_lease_seconds``);
the next attempt or the sweeper then fails the stale payment and frees the order. A processor
that raises or times out leaves the payment ``processing`` (its outcome is unknown, so it is not
a decline) for that same recovery, which voids it by payment id. An attempt
that comes back after losing its lease cannot mark the order paid (step 3 checks the lease
holder) and its charge is voided. The partial unique index on succeeded payments backs this
up in the schema itself.
"""
from __future__ import annotations

import asyncio
import logging
from dataclasses import replace

from flint import clock
from flint.actors import SYSTEM, Actor
from flint.buyers.models import Collected
from flint.cards import Card
from flint.checkout import service as checkout
from flint.checkout import store as session_store
from flint.collect import receipts
from flint.collect.models import Attempt
from flint.db import Conn
from flint.errors import FlintError, conflict, not_found
from flint.hooks import service as hooks
from flint.ids import new_id
from flint.limits import service as limits
from flint.links import service as links
from flint.links import store as link_store
from flint.orders import store as order_store
from flint.orders.models import OPEN as ORDER_OPEN
from flint.orders.models import Order
from flint.orders.service import record_order_event, record_order_events
from flint.payments import store
from flint.payments.guard import _fail_payment, abandon_attempt, clear_guard, void_quietly
from flint.payments.models import AUTHORIZED, FAILED, MANUAL, PROCESSING, REQUIRES_ACTION, SUCCEEDED, Payment
from flint.processors import FAILURE_MESSAGES, UNKNOWN, ChargeRequest, ChargeResult
from flint.runtime import Runtime

log = logging.getLogger("flint.payments")


async def _check_channel(conn: Conn, attempt: Attempt, order: Order, now: str) -> str:
    """The channel must belong to this order and still take payments (the same rule its page
    shows); a session's buyer paying is activity that pushes its drop-off deadline back. Returns how
    the channel captures its payments (automatic | manual), read from the row it checks anyway."""
    if attempt.checkout_session_id is not None:
        session = await session_store.select_session(conn, attempt.merchant_id, attempt.checkout_session_id)
        if session is None or session.order_id != order.id:
            raise not_found("checkout_session", attempt.checkout_session_id)
        checkout.check_session_payable(session, order.status)
        if session.abandon_at is not None:
            await session_store.note_buyer_activity(conn, session.id, clock.later_iso(session.abandon_after),
                                                    attempt.locale)
        return session.capture
    elif attempt.payment_link_id is not None:
        link = await link_store.select_link(conn, attempt.merchant_id, attempt.payment_link_id)
        if link is None or link.order_id != order.id:  # a link pays its own order and nothing else
            raise not_found("payment_link", attempt.payment_link_id)
        links.check_link_payable(link, order.status, now)
        return link.capture
    else:
        raise ValueError("a payment attempt needs a checkout session or a payment link")


async def _check_failed_attempts(rt: Runtime, conn: Conn, attempt: Attempt) -> None:
    """Card testing: a checkout session or payment link with its limit of failed attempts in the
    last hour takes no more (429 ``too_many_attempts``), whatever card comes next."""
    limit = limits.max_failed(rt)
    if limit is None:
        return
    if attempt.checkout_session_id is not None:
        column, value, what = "checkout_session_id", attempt.checkout_session_id, "checkout session"
    else:
        assert attempt.payment_link_id is not None
        column, value, what = "payment_link_id", attempt.payment_link_id, "payment link"
    since = limits.failed_since()
    failed = await store.count_failed_payments(conn, column, value, since)
    if failed >= limit:
        making_room = await store.select_failed_payment_time(conn, column, value, since, failed - limit)
        raise limits.refuse_failed(what, failed, making_room)


async def begin_attempt(rt: Runtime, attempt: Attempt, card: Card, actor: Actor,
                        collected: Collected | None = None) -> tuple[Payment, Payment | None]:
    """Step 1: take the order guard, and keep on the order what the buyer gave (``collected``, checked
    already). Returns the new payment and any earlier one it displaced."""
    now = clock.now_iso()
    async with rt.db.transaction() as conn:
        # Locks the order: a concurrent attempt on another process waits here, then sees this one's lease.
        order = await order_store.select_order(conn, attempt.merchant_id, attempt.order_id, for_update=True)
        if order is None:
            raise not_found("order", attempt.order_id)
        capture_method = await _check_channel(conn, attempt, order, now)
        displaced = await clear_guard(conn, order, now)
        # Again, authoritatively: attempts on this order queue on its lock, and every failure is
        # recorded under it, so a burst on one session cannot get past the limit between the check
        # before the hook and here. (After clear_guard: a challenge it abandons is a failure too.)
        await _check_failed_attempts(rt, conn, attempt)
        payment = Payment(
            id=new_id("pay"), merchant_id=order.merchant_id, order_id=order.id,
            checkout_session_id=attempt.checkout_session_id, payment_link_id=attempt.payment_link_id,
            channel=attempt.channel, status=PROCESSING, amount=order.amount_due,
            currency=order.currency, card_brand=card.brand, card_last4=card.last4,
            card_exp_month=card.exp_month, card_exp_year=card.exp_year, failure_code=None,
            failure_message=None, processor_ref=None, amount_refunded=0, amount_refund_pending=0,
            created_at=now, updated_at=now, capture_method=capture_method,
        )
        taken = await order_store.take_attempt_lease(
            conn, order.id, payment.id, clock.later_iso(rt.config.payment_lease_seconds), now)
        if not taken:  # cannot happen under BEGIN IMMEDIATE / FOR UPDATE; kept as the guard's proof
            raise conflict("payment_in_progress", "Another payment attempt for this order is in progress.")
        if collected is not None:
            # The latest details win: a buyer who corrects an address after a decline pays with the new one.
            await order_store.record_buyer_details(conn, order.id, customer=collected.customer.to_dict_or_none(),
                                                   custom_fields=collected.custom_fields, at=now)
            if collected.app_fields:
                await order_store.merge_extension_data(conn, order.id, {}, now, fields=collected.app_fields)
        await store.insert_payment(conn, payment)
    await void_quietly(rt, displaced)
    return payment, displaced


async def settle(rt: Runtime, payment: Payment, result: ChargeResult, actor: Actor,
                 locale: str | None = None) -> Payment:
    """Step 3: record the processor's answer, if this attempt still holds the order guard. ``locale``:
    the paying buyer's language, for the receipt (docs/api.md 16)."""
    now = clock.now_iso()
    void_ref = None
    async with rt.db.transaction() as conn:
        # Locks the order: the lease this attempt holds cannot be taken or freed while it settles.
        order = await order_store.select_order_by_id(conn, payment.order_id, for_update=True)
        assert order is not None
        holds_guard = order.attempt_payment_id == payment.id and order.status == ORDER_OPEN
        if holds_guard and result.status == SUCCEEDED:
            settled = await _record_success(rt, conn, order, payment, result, actor, now, locale)
        elif holds_guard and result.status == AUTHORIZED and payment.capture_method == MANUAL:
            settled = await _record_authorization(rt, conn, order, payment, result, actor, now)
        elif holds_guard and result.status == REQUIRES_ACTION:
            settled = await _record_outcome(conn, payment, REQUIRES_ACTION, result.processor_ref, None, now)
            # The buyer now owns the attempt for the length of a 3-D Secure challenge.
            await order_store.extend_attempt_lease(
                conn, order.id, payment.id, clock.later_iso(rt.config.action_lease_seconds), now)
            await record_order_event(conn, merchant_id=order.merchant_id, type="payment.requires_action",
                                actor=actor, obj=settled.to_dict(), order_id=order.id)
        elif holds_guard:
            settled = await _record_outcome(conn, payment, FAILED, result.processor_ref,
                                            result.failure_code or "processing_error", now)
            await order_store.release_attempt_lease(conn, order.id, payment.id, now)
            await record_order_event(conn, merchant_id=order.merchant_id, type="payment.failed", actor=actor,
                                obj=settled.to_dict(), order_id=order.id)
        else:
            # We lost the guard (the lease lapsed and was taken, or the order moved on): this
            # charge must not count, and any money it moved goes back.
            if result.status in (SUCCEEDED, AUTHORIZED):
                void_ref = result.processor_ref
            current = await store.select_payment(conn, payment.merchant_id, payment.id)
            assert current is not None
            settled = current
            if current.status == PROCESSING:
                code = "payment_attempt_superseded" if result.status != FAILED else (result.failure_code or "processing_error")
                settled = await _fail_payment(conn, current, code, SYSTEM) or current
    if void_ref is not None:
        await void_quietly(rt, replace(payment, processor_ref=void_ref))
    return settled


async def _record_outcome(conn: Conn, payment: Payment, status: str, processor_ref: str | None,
                          failure_code: str | None, now: str) -> Payment:
    message = FAILURE_MESSAGES.get(failure_code, "The payment failed.") if failure_code else None
    changed = await store.update_payment_result(
        conn, payment.id, from_status=PROCESSING, status=status, processor_ref=processor_ref,
        failure_code=failure_code, failure_message=message, now=now)
    if not changed:  # only the guard's holder moves its payment on; anything else is a bug
        raise RuntimeError(f"payment {payment.id} left processing behind the guard's back")
    return replace(payment, status=status, processor_ref=processor_ref or payment.processor_ref,
                   failure_code=failure_code, failure_message=message, updated_at=now)


async def _record_success(rt: Runtime, conn: Conn, order: Order, payment: Payment, result: ChargeResult,
                          actor: Actor, now: str, locale: str | None) -> Payment:
    if not await order_store.mark_order_paid(conn, order.id, payment.id, payment.amount, now):
        raise RuntimeError(f"order {order.id} would not take payment {payment.id} despite its guard")
    settled = await _record_outcome(conn, payment, SUCCEEDED, result.processor_ref, None, now)
    paid = replace(order, status="paid", amount_paid=payment.amount, attempt_payment_id=None,
                   attempt_expires_at=None, updated_at=now)
    items = [("payment.succeeded", settled.to_dict()), ("order.paid", paid.to_dict())]
    items += await _complete_sessions(rt, conn, order, payment, now)
    await record_order_events(conn, merchant_id=order.merchant_id, actor=actor, items=items, order_id=order.id)
    # The receipt, if the merchant sends them: one row in this same transaction (the outbox), sent later by
    # the mail worker; nothing at all when mail is not configured.
    await receipts.enqueue_receipt(conn, rt.config, paid, settled, locale=locale, paid_at=now)
    return settled


async def _complete_sessions(rt: Runtime, conn: Conn, order: Order, payment: Payment, now: str) -> list[tuple[str, dict]]:
    """The buyer's checkout is done (paid, or authorized): the order's open sessions complete, the paying
    one first. One paid through a recovery link or another session must not later "expire" (and tell the
    merchant the buyer gave up) or keep handing out client tokens. Returns their events."""
    items = []
    open_sessions = await session_store.select_open_sessions_of_order(conn, order.id)
    open_sessions.sort(key=lambda s: s.id != payment.checkout_session_id)
    for session_id in [s.id for s in open_sessions]:
        session = await session_store.complete_open_session(conn, session_id, now)
        if session is not None:
            items.append(("checkout.session.completed", session.to_dict(rt.config.public_url, None)))
    return items


async def _record_authorization(rt: Runtime, conn: Conn, order: Order, payment: Payment, result: ChargeResult,
                                actor: Actor, now: str) -> Payment:
    """Manual capture (docs/api.md 17): the money is held, nothing is paid yet. The order leaves the guard
    for `authorized` (no second attempt while it stands); the buyer's checkout is done, so its open
    sessions complete; the receipt waits for the capture."""
    if not await order_store.mark_order_authorized(conn, order.id, payment.id, now):
        raise RuntimeError(f"order {order.id} would not take authorization {payment.id} despite its guard")
    if not await store.record_authorization(conn, payment.id, result.processor_ref, now):
        raise RuntimeError(f"payment {payment.id} left processing behind the guard's back")
    settled = replace(payment, status=AUTHORIZED, processor_ref=result.processor_ref or payment.processor_ref,
                      amount_authorized=payment.amount, authorized_at=now, updated_at=now)
    items = [("payment.authorized", settled.to_dict())]
    items += await _complete_sessions(rt, conn, order, payment, now)
    await record_order_events(conn, merchant_id=order.merchant_id, actor=actor, items=items, order_id=order.id)
    return settled


async def _call_processor(rt: Runtime, call, payment_id: str) -> ChargeResult | None:
    """The processor's answer, or None when its outcome is unknown (it raised or timed out)."""
    try:
        async with asyncio.timeout(rt.config.processor_timeout_seconds):  # no extra task, unlike wait_for
            return await call
    except Exception:
        log.exception("processor call failed; outcome unknown", extra={"payment_id": payment_id})
        return None


def _outcome_unknown(payment: Payment) -> FlintError:
    # The payment stays `processing` until its lease lapses; recovery then fails and voids it.
    return FlintError(503, "processor_unavailable",
                      "The card processor did not answer. Nothing will be charged twice: "
                      "try again in a minute.",
                      headers={"Retry-After": "60"}, extra={"payment_id": payment.id})


async def confirm_payment(rt: Runtime, attempt: Attempt, card: Card, actor: Actor,
                          collected: Collected | None = None) -> Payment:
    """Pay an order once, whatever the channel and the concurrency. Shielded: once begun, the attempt
    runs to its end even if its caller is cancelled (the buyer's connection drops), so the order is
    never left waiting for its lease to lapse. ``collected``: the buyer's details, checked by
    flint.collect.details.check (None for callers that collect none, such as the CLI)."""
    return await asyncio.shield(_confirm(rt, attempt, card, actor, collected))


async def _confirm(rt: Runtime, attempt: Attempt, card: Card, actor: Actor, collected: Collected | None) -> Payment:
    async with rt.db.read() as conn:
        order = await order_store.select_order(conn, attempt.merchant_id, attempt.order_id)
        payable = order is not None and order.status == ORDER_OPEN
        if payable:
            # Card testing limits come first: a refused attempt reaches neither a hook nor the processor.
            await _check_failed_attempts(rt, conn, attempt)
    counted = None
    if payable and attempt.client_address is not None:
        # Only an attempt that may reach a hook or the processor counts: one on a closed order is
        # answered from the database alone (begin_attempt says why it cannot be paid).
        counted = await limits.count_address_attempt(rt, attempt.client_address)
    try:
        if payable:
            assert order is not None
            # Installed apps' checkout.before_payment hook: before the attempt, outside any transaction;
            # it may block it (402) or send an embedded buyer to the hosted page (409).
            await hooks.before_payment(rt, order, channel=attempt.channel,
                                       checkout_session_id=attempt.checkout_session_id,
                                       payment_link_id=attempt.payment_link_id, collected=collected)
        payment, _ = await begin_attempt(rt, attempt, card, actor, collected)
    except FlintError as refused:
        if refused.code == "too_many_attempts":  # refused under the order lock: not counted either
            await limits.give_back(rt, counted)
        raise
    result = await _call_processor(
        rt, rt.processor.charge(ChargeRequest(payment.id, payment.amount, payment.currency, card,
                                              capture=payment.capture_method)), payment.id)
    if result is None or result.status == UNKNOWN:  # a connector that cannot tell: settle later, never a decline
        raise _outcome_unknown(payment)
    return await settle(rt, payment, result, actor, attempt.locale)


async def resolve_challenge(rt: Runtime, merchant_id: str, payment_id: str, approved: bool,
                            actor: Actor, *, checkout_session_id: str | None = None,
                            locale: str | None = None) -> Payment:
    """The buyer's answer to a 3-D Secure challenge: approve → charge completes, deny → fails.
    Shielded like confirm_payment: an answer being charged finishes whatever its caller does.
    ``locale``: the answering buyer's language, for the receipt."""
    return await asyncio.shield(_resolve(rt, merchant_id, payment_id, approved, actor,
                                         checkout_session_id=checkout_session_id, locale=locale))


async def _resolve(rt: Runtime, merchant_id: str, payment_id: str, approved: bool,
                   actor: Actor, *, checkout_session_id: str | None = None, locale: str | None = None) -> Payment:
    now = clock.now_iso()
    lapsed = None
    async with rt.db.transaction() as conn:
        payment = await store.select_payment(conn, merchant_id, payment_id)
        if payment is None or (checkout_session_id and payment.checkout_session_id != checkout_session_id):
            raise not_found("payment", payment_id, param="payment")
        # Locks the order, then re-reads the payment under it: a second answer, a new attempt or the
        # sweeper freeing the order waits here and then sees what this one decided.
        order = await order_store.select_order_by_id(conn, payment.order_id, for_update=True)
        assert order is not None
        payment = await store.select_payment(conn, merchant_id, payment_id, for_update=True)
        assert payment is not None
        if payment.status != REQUIRES_ACTION:
            raise conflict("payment_not_awaiting_action", f"This payment is {payment.status}, not awaiting action.")
        if order.attempt_payment_id != payment.id or not order.attempt_live(now):
            # Too late: fail it here (and commit that), then tell the buyer below.
            if order.attempt_payment_id == payment.id:
                lapsed = await abandon_attempt(conn, order, payment, "payment_attempt_expired")
            else:
                lapsed = await _fail_payment(conn, payment, "payment_attempt_expired", SYSTEM)
        else:
            # Only one answer may run: the conditional status change is the challenge's own guard.
            if not await store.update_payment_result(
                    conn, payment.id, from_status=REQUIRES_ACTION, status=PROCESSING, processor_ref=None,
                    failure_code=None, failure_message=None, now=now):
                raise conflict("payment_not_awaiting_action", "This challenge was already answered.")
            await order_store.extend_attempt_lease(
                conn, order.id, payment.id, clock.later_iso(rt.config.payment_lease_seconds), now)
            payment = replace(payment, status=PROCESSING)
    if lapsed is not None or payment.status != PROCESSING:
        await void_quietly(rt, lapsed)
        raise conflict("payment_attempt_expired", "This authentication took too long; please pay again.")
    # Manual capture asks for an authorization only (the keyword only then: the automatic call stays as it was).
    completing = (rt.processor.complete_action(payment.processor_ref or "", approved, capture=MANUAL)
                  if payment.capture_method == MANUAL else rt.processor.complete_action(payment.processor_ref or "", approved))
    result = await _call_processor(rt, completing, payment.id)
    if result is None or result.status == UNKNOWN:  # a connector that cannot tell: settle later, never a decline
        raise _outcome_unknown(payment)
    return await settle(rt, payment, result, actor, locale)


async def recover_lapsed_attempts(rt: Runtime, batch: int = 100) -> int:
    """Sweeper step: free orders whose attempt died mid-way. Safe beside other sweepers: each
    order is locked (or skipped, if another sweeper or a new attempt holds it) and re-checked."""
    async with rt.db.read() as conn:
        lapsed = await order_store.select_lapsed_attempts(conn, clock.now_iso(), batch)
    freed = 0
    for row in lapsed:
        displaced = None
        async with rt.db.transaction() as conn:
            # Locks the order, or skips it: whoever holds it (another sweeper, a new attempt) frees it.
            order = await order_store.select_order_by_id(conn, row["id"], for_update=True, skip_locked=True)
            now = clock.now_iso()
            if order is not None and order.attempt_payment_id == row["attempt_payment_id"] and not order.attempt_live(now):
                displaced = await clear_guard(conn, order, now)
                freed += 1
        await void_quietly(rt, displaced)
    return freed
