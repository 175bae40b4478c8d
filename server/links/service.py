"""Payment links: a URL that pays one order and nothing else (docs/api.md 7). Manual links come from the
merchant's API; recovery links from the drop-off sweeper (recovery.py); app links, later, from apps."""
from __future__ import annotations

from typing import Any

from flint import clock
from flint.actors import Actor
from flint.buyers import service as buyers
from flint.db import Conn
from flint.errors import FlintError, conflict, invalid, not_found
from flint.ids import new_id
from flint.links import store
from flint.links.models import PaymentLink
from flint.orders import store as order_store
from flint.orders.models import CANCELED, Order
from flint.orders.models import AUTHORIZED as ORDER_AUTHORIZED
from flint.orders.models import OPEN as ORDER_OPEN
from flint.orders.service import record_order_event
from flint.runtime import Runtime

MIN_EXPIRES_IN, MAX_EXPIRES_IN = 60, 90 * 86400
DEFAULT_EXPIRES_IN = 30 * 86400
RECOVERY_EXPIRES_IN = 7 * 86400  # a drop-off's link: a week for the buyer to come back


def new_link(order: Order, *, source: str, expires_in: int | None, created_by: Actor,
             checkout_session_id: str | None = None, now: str | None = None,
             collect: str | None = None, custom_fields: str | None = None,
             capture: str = "automatic") -> PaymentLink:
    """``collect``/``custom_fields``: stored JSON (flint.buyers.service.stored_collect)."""
    now = now or clock.now_iso()
    return PaymentLink(
        id=new_id("plink"), merchant_id=order.merchant_id, order_id=order.id, source=source,
        checkout_session_id=checkout_session_id, active=1,
        expires_at=clock.later_iso(expires_in) if expires_in else None, deactivated_at=None,
        created_at=now, updated_at=now, created_by_type=created_by.type, created_by_id=created_by.id,
        collect=collect, custom_fields=custom_fields, capture=capture,
    )


async def insert_and_announce(conn: Conn, rt: Runtime, link: PaymentLink, actor: Actor) -> None:
    await store.insert_link(conn, link)
    await record_order_event(conn, merchant_id=link.merchant_id, type="payment_link.created", actor=actor,
                        obj=link.to_dict(rt.config.public_url), order_id=link.order_id)


async def create_link(rt: Runtime, merchant_id: str, order_id: str, *, expires_in: int | None,
                      actor: Actor, collect: dict[str, Any] | None = None,
                      custom_fields: list[dict[str, Any]] | None = None,
                      capture: str = "automatic") -> PaymentLink:
    """A link made on request: ``source`` "app" when an app's token asked for it, else "manual".
    ``capture`` "manual": its payment is only authorized, captured later (docs/api.md 17)."""
    if capture not in ("automatic", "manual"):
        raise invalid("capture_invalid", "capture must be 'automatic' or 'manual'.", "capture")
    source = "app" if actor.type == "app" else "manual"
    if expires_in is not None and not MIN_EXPIRES_IN <= expires_in <= MAX_EXPIRES_IN:
        raise invalid("expires_in_invalid",
                      f"expires_in must be between {MIN_EXPIRES_IN} and {MAX_EXPIRES_IN} seconds.", "expires_in")
    collect_json, custom_json = buyers.stored_collect(collect, custom_fields)
    async with rt.db.transaction() as conn:
        # Locks the order: a cancel or payment racing this waits, so no link opens on a closed order.
        order = await order_store.select_order(conn, merchant_id, order_id, for_update=True)
        if order is None:
            raise not_found("order", order_id, param="order")
        if order.status != ORDER_OPEN:
            raise conflict("order_not_open", f"A payment link needs an open order; this one is {order.status}.")
        link = new_link(order, source=source, expires_in=expires_in or DEFAULT_EXPIRES_IN, created_by=actor,
                        collect=collect_json, custom_fields=custom_json, capture=capture)
        await insert_and_announce(conn, rt, link, actor)
    return link


async def get_link(rt: Runtime, merchant_id: str, link_id: str) -> PaymentLink:
    async with rt.db.read() as conn:
        link = await store.select_link(conn, merchant_id, link_id)
    if link is None:
        raise not_found("payment_link", link_id)
    return link


async def list_links(rt: Runtime, merchant_id: str, order_id: str | None, limit: int, starting_after: str | None):
    async with rt.db.read() as conn:
        return await store.select_links_page(conn, merchant_id, order_id, limit, starting_after)


async def deactivate_link(rt: Runtime, merchant_id: str, link_id: str, actor: Actor) -> PaymentLink:
    async with rt.db.transaction() as conn:
        link = await store.select_link(conn, merchant_id, link_id)
        if link is None:
            raise not_found("payment_link", link_id)
        # Locks the order before the link row (the event below updates the order anyway): an
        # attempt through this link either began before or sees it inactive, and no deadlock.
        await order_store.select_order_by_id(conn, link.order_id, for_update=True)
        done = await store.deactivate(conn, link.id, clock.now_iso())
        if done is None:
            raise conflict("payment_link_inactive", "This payment link is already inactive.")
        await record_order_event(conn, merchant_id=merchant_id, type="payment_link.deactivated", actor=actor,
                            obj=done.to_dict(rt.config.public_url), order_id=done.order_id)
    return done


def check_link_payable(link: PaymentLink, order_status: str, now: str | None = None) -> None:
    """Why a buyer cannot pay through this link right now, as a stable code (the order's state
    first: a paid order's link answers "already paid", whatever else is true of the link)."""
    if order_status == CANCELED:
        raise conflict("order_canceled", "This order was canceled.")
    if order_status == ORDER_AUTHORIZED:
        # A payment holds the buyer's money already (docs/api.md 17): no second attempt while it stands.
        raise conflict("order_authorized", "A payment for this order is authorized and awaits capture.")
    if order_status != ORDER_OPEN:
        raise conflict("order_already_paid", "This order has already been paid.")
    if not link.active:
        raise FlintError(409, "payment_link_inactive", "This payment link is no longer active.")
    if link.expired(now or clock.now_iso()):
        raise FlintError(409, "payment_link_expired", "This payment link has expired.")
