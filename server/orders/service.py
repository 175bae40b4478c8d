"""Orders: the durable object every payment hangs on."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from flint import clock, money
from flint.actors import Actor
from flint.errors import invalid, not_found
from flint.events import service as events
from flint.events import store as event_store
from flint.events.models import Event
from flint.ids import new_id
from flint.orders import store
from flint.orders.models import OPEN, Order
from flint.runtime import Runtime


@dataclass
class LineItem:
    name: str
    quantity: int
    unit_amount: int


@dataclass
class NewOrder:
    currency: str
    line_items: list[LineItem]
    customer_email: str | None = None
    reference: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)


def build_order(merchant_id: str, new: NewOrder, actor: Actor, param_prefix: str = "") -> Order:
    """Validate the business rules (currency, totals) and build the row."""
    currency = money.check_currency(new.currency, param_prefix + "currency")
    if not new.line_items:
        raise invalid("line_items_empty", "An order needs at least one line item.", param_prefix + "line_items")
    items: list[dict[str, Any]] = []
    total = 0
    for i, item in enumerate(new.line_items):
        where = f"{param_prefix}line_items[{i}]"
        if item.quantity < 1:
            raise invalid("quantity_invalid", "Quantities must be at least 1.", where + ".quantity")
        if item.unit_amount < 0:
            raise invalid("amount_too_small", "Amounts may not be negative.", where + ".unit_amount")
        line_total = item.quantity * item.unit_amount
        if line_total > money.MAX_AMOUNT:
            raise invalid("amount_too_large", f"A line may not exceed {money.MAX_AMOUNT} minor units.", where)
        total += line_total
        items.append({"name": item.name, "quantity": item.quantity, "unit_amount": item.unit_amount,
                      "amount_total": line_total})
    for key, value in new.metadata.items():
        if not 1 <= len(key) <= 40 or len(value) > 500:
            raise invalid("metadata_invalid", "Metadata keys are 1-40 characters, values at most 500.",
                          f"{param_prefix}metadata.{key}")
    if len(new.metadata) > 50:
        raise invalid("metadata_invalid", "At most 50 metadata keys.", f"{param_prefix}metadata")
    if total <= 0:
        raise invalid("amount_too_small", "An order's total must be above zero.", param_prefix + "line_items")
    if total > money.MAX_AMOUNT:
        raise invalid("amount_too_large", f"An order's total may not exceed {money.MAX_AMOUNT} minor units.",
                      param_prefix + "line_items")
    now = clock.now_iso()
    return Order(
        id=new_id("ord"), merchant_id=merchant_id, status=OPEN, currency=currency,
        amount_total=total, amount_paid=0, amount_refunded=0,
        line_items=json.dumps(items), customer_email=new.customer_email, reference=new.reference,
        metadata=json.dumps(new.metadata, sort_keys=True), extension_data="{}", event_seq=0,
        attempt_payment_id=None, attempt_expires_at=None, created_at=now, updated_at=now,
        created_by_type=actor.type, created_by_id=actor.id,
    )


async def create_order(rt: Runtime, merchant_id: str, new: NewOrder, actor: Actor) -> Order:
    order = build_order(merchant_id, new, actor)
    async with rt.db.transaction() as conn:
        await store.insert_order(conn, order)
        await events.record(conn, merchant_id=order.merchant_id, type="order.created", actor=actor,
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
    """``types``: the event types the caller may read (an app: API.md 12); None: all."""
    async with rt.db.read() as conn:
        if await store.select_order(conn, merchant_id, order_id) is None:
            raise not_found("order", order_id)
        rows = await event_store.select_order_events(conn, order_id, after, limit + 1, types)
    return rows[:limit], len(rows) > limit
