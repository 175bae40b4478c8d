"""Drop-off recovery (docs/api.md 7): a session with ``recovery.enabled`` whose buyer left (the widget's
beacon) and did not come back within ``abandon_after``, idled that long, or let it expire gets
exactly one recovery link to the same order, named in the session and announced by
``payment_link.created``. Never a second order.

Safe with several sweepers at once: each locks the orders and sessions it takes, skipping those
another holds (so they split the work), and re-checks each session under its lock; the conditional
update of the session (only while it has no link) and a partial unique index on recovery links back
that up.
"""
from __future__ import annotations

from flint import clock
from flint.actors import SYSTEM, Actor
from flint.checkout import store as session_store
from flint.checkout.models import OPEN, CheckoutSession
from flint.config import Config
from flint.db import Conn
from flint.links import emails, store
from flint.links.models import PaymentLink
from flint.links.service import RECOVERY_EXPIRES_IN, new_link
from flint.orders import store as order_store
from flint.orders.models import OPEN as ORDER_OPEN
from flint.orders.models import Order
from flint.orders.service import record_order_events
from flint.runtime import Runtime

CHUNK = 250  # drop-offs per write transaction: short transactions, few commits


async def recovery_link_for(conn: Conn, config: Config, session: CheckoutSession, order: Order, reason: str,
                            now: str) -> PaymentLink | None:
    """Inside the caller's transaction: the session's one recovery link, if it is watched and its
    order can still be paid (None otherwise), and its email to the buyer when the session asked for
    one (docs/api.md 16: written to the mail outbox here, so link and mail exist together). The caller
    records the events."""
    if not session.recovery_enabled or session.recovery_payment_link_id or order.status != ORDER_OPEN:
        return None
    link = new_link(order, source="recovery", expires_in=RECOVERY_EXPIRES_IN, created_by=SYSTEM,
                    checkout_session_id=session.id, now=now,
                    # The buyer comes back to the same form: recovery never changes what is asked.
                    collect=session.collect, custom_fields=session.custom_fields, capture=session.capture)
    if not await session_store.mark_dropped_off(conn, session.id, link_id=link.id, reason=reason, at=now):
        return None  # another sweeper made it
    await store.insert_link(conn, link)
    session.recovery_payment_link_id, session.dropped_off_at, session.drop_off_reason = link.id, now, reason
    session.abandon_at = None
    await emails.enqueue_recovery(conn, config, session, order, link)
    return link


async def sweep_dropped_off(rt: Runtime, actor: Actor, batch: int = 5000) -> int:
    """Sweeper step: abandoned sessions (the buyer left, or idled past abandon_after) → one
    recovery link each, with ``checkout.session.abandoned`` and ``payment_link.created``."""
    now = clock.now_iso()
    async with rt.db.read() as conn:
        due = await session_store.select_dropped_off_ids(conn, now, batch)
    made = 0
    for start in range(0, len(due), CHUNK):
        async with rt.db.transaction() as conn:
            listed = await session_store.select_sessions_by_ids(conn, due[start:start + CHUNK])
            # Claims the orders, then their sessions, skipping any another transaction holds (another
            # sweeper's chunk, a payment): concurrent sweepers take disjoint sets, and never wait.
            orders = await order_store.select_orders_by_ids(
                conn, sorted({s.order_id for s in listed}), for_update=True, skip_locked=True)
            sessions = await session_store.select_sessions_by_ids(
                conn, [s.id for s in listed if s.order_id in orders], for_update=True, skip_locked=True)
            for session in sessions:  # as they are now, under the locks: _abandon re-checks each
                made += await _abandon(conn, rt, session, orders[session.order_id], actor, now)
    return made


async def _abandon(conn: Conn, rt: Runtime, session: CheckoutSession, order: Order, actor: Actor, now: str) -> int:
    if session.status != OPEN or session.recovery_payment_link_id or session.abandon_at is None:
        return 0  # changed since it was listed
    left = session.buyer_left_at is not None
    if session.abandon_at > now:
        return 0  # the buyer acted (or came back) meanwhile
    if order.status != ORDER_OPEN:
        await session_store.stop_watching(conn, session.id)  # paid elsewhere, or canceled: nothing to recover
        return 0
    if order.attempt_payment_id is not None and order.attempt_live(now):
        return 0  # a payment is under way right now; look again on a later sweep
    link = await recovery_link_for(conn, rt.config, session, order, "left" if left else "idle", now)
    if link is None:
        return 0
    public_url = rt.config.public_url
    await record_order_events(conn, merchant_id=order.merchant_id, actor=actor, order_id=order.id, items=[
        ("checkout.session.abandoned", session.to_dict(public_url, None)),
        ("payment_link.created", link.to_dict(public_url)),
    ])
    return 1
