"""Orders: the durable object every payment hangs on."""
from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from flint import clock
from flint.actors import Actor
from flint.db import Conn
from flint.errors import not_found
from flint.events import service as events
from flint.events import store as event_store
from flint.events.models import Event
from flint.orders import store
from flint.orders.models import NewOrder, Order, build_order
from flint.runtime import Runtime


async def record_order_events(conn: Conn, *, merchant_id: str, actor: Actor, items: list[tuple[str, dict[str, Any]]],
                              order_id: str) -> list[Event]:
    """Record several events of one order, in the caller's transaction, numbered in the order's own
    sequence (1, 2, 3, ... with no gaps: the counter is the order row's, taken here)."""
    last = await store.reserve_event_sequences(conn, order_id, len(items))
    return await events.record_all(conn, merchant_id=merchant_id, actor=actor, items=items, order_id=order_id,
                                   last_sequence=last)


async def record_order_event(conn: Conn, *, merchant_id: str, type: str, actor: Actor, obj: dict[str, Any],
                             order_id: str) -> Event:
    return (await record_order_events(conn, merchant_id=merchant_id, actor=actor, items=[(type, obj)],
                                      order_id=order_id))[0]


async def create_order(rt: Runtime, merchant_id: str, new: NewOrder, actor: Actor) -> Order:
    order = build_order(merchant_id, new, actor)
    async with rt.db.transaction() as conn:
        await store.insert_order(conn, order)
        await record_order_event(conn, merchant_id=order.merchant_id, type="order.created", actor=actor,
                            obj=order.to_dict(), order_id=order.id)
    return order


async def get_order(rt: Runtime, merchant_id: str, order_id: str) -> Order:
    async with rt.db.read() as conn:
        order = await store.select_order(conn, merchant_id, order_id)
    if order is None:
        raise not_found("order", order_id)
    return order


async def list_orders(rt: Runtime, merchant_id: str, limit: int, starting_after: str | None):
    async with rt.db.read() as conn:
        return await store.select_orders_page(conn, merchant_id, limit, starting_after)


async def list_order_events(
    rt: Runtime, merchant_id: str, order_id: str, after: int, limit: int, types: list[str] | None = None
) -> tuple[list[Event], bool]:
    """``types``: the event types the caller may read (an app: docs/api.md 12); None: all."""
    async with rt.db.read() as conn:
        if await store.select_order(conn, merchant_id, order_id) is None:
            raise not_found("order", order_id)
        rows = await event_store.select_order_events(conn, order_id, after, limit + 1, types)
    return rows[:limit], len(rows) > limit


# -- the right to erasure (docs/api.md 14) ---------------------------------------------------------------

def _without_app_fields(extension_data: dict[str, Any]) -> dict[str, Any]:
    """Each app's entry without ``fields`` (what the buyer typed into its checkout fields); the app's
    own annotations stay, they are the app's data about the order, not the buyer's."""
    return {app_id: ({key: value for key, value in entry.items() if key != "fields"}
                     if isinstance(entry, dict) else entry)
            for app_id, entry in extension_data.items()}


def erase_buyer_data(value: Any) -> Any:
    """A copy of a JSON value (an event's data) in which every order snapshot carries no personal data
    of the buyer: no ``customer``, ``customer_email`` or custom field values, no app field values.
    Amounts, statuses, line items, reference and metadata (the merchant's own) stay. Only order
    snapshots hold buyer data: sessions and links carry what is asked (field specs), never the answers,
    and payments the card's brand and last four digits only."""
    if isinstance(value, list):
        return [erase_buyer_data(item) for item in value]
    if not isinstance(value, dict):
        return value
    out = {key: erase_buyer_data(item) for key, item in value.items()}
    if out.get("object") == "email" and out.get("to"):
        out["to"] = None  # email.sent / email.failed (flint.mail): the buyer's address
    if out.get("object") == "order":
        # Only keys the snapshot has: one written before buyer details existed stays in its own shape.
        for key, erased in (("customer", None), ("customer_email", None), ("custom_fields", {})):
            if key in out:
                out[key] = erased
        if isinstance(out.get("extension_data"), dict):
            out["extension_data"] = _without_app_fields(out["extension_data"])
    return out


def holds_buyer_data(order: Order) -> bool:
    return (order.customer is not None or order.customer_email is not None
            or bool(json.loads(order.custom_fields or "{}"))
            or any(isinstance(entry, dict) and "fields" in entry
                   for entry in json.loads(order.extension_data or "{}").values()))


# Erases what a part above this one keeps of an order's buyer, inside the redaction's transaction:
# (conn, order_id, now). flint.closing.redact_order names them (the mails' addresses).
Eraser = Callable[[Conn, str, str], Awaitable[None]]


async def redact_order(rt: Runtime, merchant_id: str, order_id: str, actor: Actor,
                       also: Sequence[Eraser] = ()) -> Order:
    """Erase the buyer's personal data from the order and from every stored event of it, in any
    status, and record ``order.redacted`` (its snapshot: the redacted order), which goes out as a
    webhook like any order event so receivers can erase their copies too.

    Idempotent: an order already redacted that holds nothing personal is returned as it is, with no
    second event. (Details a buyer gives after a redaction, paying the still open order, are new data:
    a second redaction erases them and records its own event.)

    A payment attempt in flight does not stop it: its buyer details were written when the attempt
    began, under the order's lock, which this takes first (the house rule), so they are erased here,
    and whatever the attempt records later snapshots the redacted order."""
    async with rt.db.transaction() as conn:
        order = await store.select_order(conn, merchant_id, order_id, for_update=True)
        if order is None:
            raise not_found("order", order_id)
        if order.redacted_at is not None and not holds_buyer_data(order):
            return order
        now = clock.now_iso()
        extension_data = _without_app_fields(json.loads(order.extension_data or "{}"))
        await store.erase_buyer_details(conn, order.id, extension_data=json.dumps(extension_data, sort_keys=True),
                                        at=now)
        await events.rewrite_order_events(conn, order.id, erase_buyer_data)
        for erase in also:
            await erase(conn, order.id, now)
        order = await store.select_order(conn, merchant_id, order_id)
        assert order is not None
        await record_order_event(conn, merchant_id=merchant_id, type="order.redacted", actor=actor,
                                 obj=order.to_dict(), order_id=order.id)
    # Outside the transaction, once committed: the old versions of the rows must not linger in the
    # database files (SQLite's WAL; a no-op on PostgreSQL, where VACUUM reclaims them).
    await rt.db.compact_after_erasure()
    return order
