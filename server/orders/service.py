"""Orders: the durable object every payment hangs on."""
from __future__ import annotations

from typing import Any

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
