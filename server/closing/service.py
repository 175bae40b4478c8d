"""Cancel an order, expire a session (by the merchant, or the sweeper once it is past its time)."""
from __future__ import annotations

from flint import clock
from flint.actors import Actor
from flint.checkout import store as session_store
from flint.checkout.models import EXPIRED, OPEN, CheckoutSession
from flint.config import Config
from flint.db import Conn
from flint.errors import FlintError, conflict, not_found
from flint.links.recovery import recovery_link_for
from flint.mail import service as mail
from flint.orders import store as order_store
from flint.orders.models import CANCELED, Order
from flint.orders.models import OPEN as ORDER_OPEN
from flint.orders import service as orders
from flint.orders.service import record_order_event, record_order_events
from flint.payments import guard
from flint.payments import store as payment_store
from flint.runtime import Runtime


async def redact_order(rt: Runtime, merchant_id: str, order_id: str, actor: Actor) -> Order:
    """The buyer's personal data erased from the order and its events (flint.orders.redact_order) and, in
    the same transaction, from what the parts above orders keep of it: the addresses of its mails."""
    return await orders.redact_order(rt, merchant_id, order_id, actor, also=(mail.erase_order,))


async def cancel_order(rt: Runtime, merchant_id: str, order_id: str, actor: Actor) -> Order:
    """open → canceled (409 otherwise, or while a payment is in flight); its open sessions expire with it."""
    async with rt.db.transaction() as conn:
        # Locks the order: a confirm racing the cancel waits here (or this waits for its attempt).
        order = await order_store.select_order(conn, merchant_id, order_id, for_update=True)
        if order is None:
            raise not_found("order", order_id)
        if order.status != ORDER_OPEN:
            raise conflict("order_not_open", f"Only open orders can be canceled; this one is {order.status}.")
        now = clock.now_iso()
        displaced = await guard.clear_guard(conn, order, now)
        await order_store.update_order_status(conn, order.id, from_status=ORDER_OPEN, to_status=CANCELED, at=now)
        order = await order_store.select_order(conn, merchant_id, order_id)
        assert order is not None
        await record_order_event(conn, merchant_id=merchant_id, type="order.canceled", actor=actor,
                            obj=order.to_dict(), order_id=order.id)
        await expire_open_sessions_of_order(conn, order.id, actor, rt.config)
        order = await order_store.select_order(conn, merchant_id, order_id)
    await guard.void_quietly(rt, displaced)
    assert order is not None
    return order


async def _expire(conn: Conn, session: CheckoutSession, actor: Actor, config: Config) -> bool:
    """open → expired, with its event; a session watched for recovery whose order can still be paid
    gets its one recovery link (and its email, docs/api.md 16) in the same transaction
    (``payment_link.created`` follows)."""
    public_url = config.public_url
    now = clock.now_iso()
    if not await session_store.update_session_status(conn, session.id, from_status=OPEN, to_status=EXPIRED, at=now):
        return False
    session.status = EXPIRED
    order = await order_store.select_order_by_id(conn, session.order_id)
    assert order is not None
    link = await recovery_link_for(conn, config, session, order, "expired", now)
    items = [("checkout.session.expired", session.to_dict(public_url, None))]
    if link is not None:
        items.append(("payment_link.created", link.to_dict(public_url)))
    await record_order_events(conn, merchant_id=session.merchant_id, actor=actor, items=items,
                            order_id=session.order_id)
    return True


async def expire_session(rt: Runtime, merchant_id: str, session_id: str, actor: Actor) -> CheckoutSession:
    async with rt.db.transaction() as conn:
        found = await session_store.select_session(conn, merchant_id, session_id)
        if found is None:
            raise not_found("checkout_session", session_id)
        # Locks the order, then the session: a payment settling (which completes the session) or a
        # new attempt on it waits here, or this waits for it and then sees the session closed.
        order = await order_store.select_order_by_id(conn, found.order_id, for_update=True)
        session = await session_store.select_session(conn, merchant_id, session_id, for_update=True)
        assert order is not None and session is not None
        if session.status != OPEN:
            raise conflict("session_not_open", f"Only open sessions can be expired; this one is {session.status}.")
        displaced = await _make_way(conn, session, order)
        await _expire(conn, session, actor, rt.config)
    await guard.void_quietly(rt, displaced)
    return session


async def _make_way(conn: Conn, session: CheckoutSession, order: Order):
    """A session cannot close under a payment still talking to the processor (409
    payment_in_progress); a 3-D Secure challenge it was waiting on is abandoned with it. The
    caller holds the order's lock."""
    if order.attempt_payment_id is None:
        return None
    attempt = await payment_store.select_payment(conn, order.merchant_id, order.attempt_payment_id)
    if attempt is None or attempt.checkout_session_id != session.id:
        return None  # another channel's attempt: not this session's to stop
    return await guard.clear_guard(conn, order, clock.now_iso())


async def expire_open_sessions_of_order(conn: Conn, order_id: str, actor: Actor, config: Config) -> None:
    for session in await session_store.select_open_sessions_of_order(conn, order_id):
        await _expire(conn, session, actor, config)


async def sweep_expired(rt: Runtime, actor: Actor, batch: int = 200) -> int:
    """Expire open sessions past their time. Safe beside other sweepers: each session's order is
    locked (or skipped while another transaction holds it) and the session re-checked under it;
    the conditional status update still lets exactly one of them emit the event."""
    now = clock.now_iso()
    async with rt.db.read() as conn:
        due = await session_store.select_due_sessions(conn, now, batch)
    expired = 0
    for session_id, order_id in due:
        displaced = None
        try:
            async with rt.db.transaction() as conn:
                # Locks the order, or skips it: another sweeper (or a payment) holding it settles it.
                order = await order_store.select_order_by_id(conn, order_id, for_update=True, skip_locked=True)
                session = await session_store.select_session_by_id(conn, session_id, for_update=True) if order else None
                if order is not None and session is not None and session.status == OPEN:
                    displaced = await _make_way(conn, session, order)
                    expired += await _expire(conn, session, actor, rt.config)
        except FlintError as busy:  # a payment is mid-flight: expire it on a later sweep
            if busy.code != "payment_in_progress":
                raise
        await guard.void_quietly(rt, displaced)
    return expired


