"""Recording events: always inside the caller's transaction (the outbox pattern), so nothing
changes without its event and no event exists without its change."""
from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from flint import clock
from flint.actors import Actor
from flint.db import Conn
from flint.errors import not_found
from flint.event_types import EVENT_TYPES
from flint.events import store
from flint.events.models import Event
from flint.ids import new_id
from flint.runtime import Runtime
from flint.scopes import readable
from flint.webhooks.service import fan_out


async def record_all(
    conn: Conn,
    *,
    merchant_id: str,
    actor: Actor,
    items: list[tuple[str, dict[str, Any]]],
    order_id: str | None = None,
    last_sequence: int | None = None,
) -> list[Event]:
    """Record several events of one change, in order. An order's events are numbered in its own
    sequence: ``last_sequence`` is the last of the numbers the caller reserved for them (the order's
    counter is the order's to hand out: flint.orders.service.record_order_events does both)."""
    for type, _ in items:
        assert type in EVENT_TYPES, type
    assert (order_id is None) == (last_sequence is None), "an order's events need their reserved sequence numbers"
    last = last_sequence
    now = clock.now()
    events = [
        Event(
            id=new_id("evt"),
            merchant_id=merchant_id,
            order_id=order_id,
            sequence=None if last is None else last - len(items) + 1 + i,
            type=type,
            actor_type=actor.type,
            actor_id=actor.id,
            data=_encode({"object": obj}),
            # One microsecond apart, so lists ordered by time keep the change's own order.
            created_at=clock.iso(now + timedelta(microseconds=i)),
        )
        for i, (type, obj) in enumerate(items)
    ]
    await store.insert_events(conn, events)
    # The outbox: each subscribed webhook endpoint's delivery commits (or not) with its event.
    await fan_out(conn, events)
    return events


def _encode(data: dict[str, Any]) -> str:
    """An event's stored data: compact and key-sorted, the text the webhooks sign."""
    return json.dumps(data, separators=(",", ":"), sort_keys=True)


async def rewrite_order_events(conn: Conn, order_id: str,
                               transform: Callable[[dict[str, Any]], dict[str, Any]]) -> int:
    """Pass the stored data of every event of one order through ``transform`` and store what changed;
    returns how many changed. For erasure only (the right to erasure outranks "events never change"):
    the caller holds the order's lock, so no event of the order is being written meanwhile. Webhook
    deliveries keep no copy of a body (the worker builds it from the event when it sends), so a
    delivery still pending, or retried later, carries the rewritten data."""
    changed = {}
    for event_id, data in await store.select_order_event_data(conn, order_id):
        rewritten = _encode(transform(json.loads(data)))
        if rewritten != data:
            changed[event_id] = rewritten
    await store.update_event_data(conn, changed)
    return len(changed)


async def record(
    conn: Conn,
    *,
    merchant_id: str,
    type: str,
    actor: Actor,
    obj: dict[str, Any],
) -> Event:
    """One event of no order (an app installed, an endpoint disabled); an order's go through
    flint.orders.service.record_order_event."""
    return (await record_all(conn, merchant_id=merchant_id, actor=actor, items=[(type, obj)]))[0]


async def get_event(rt: Runtime, merchant_id: str, event_id: str, types: list[str] | None = None) -> Event:
    """``types``: the event types the caller may read (an app: docs/api.md 12); None: all."""
    async with rt.db.read() as conn:
        event = await store.select_event(conn, merchant_id, event_id, types)
    if event is None:
        raise not_found("event", event_id)
    return event


async def list_events(rt: Runtime, merchant_id: str, event_type: str | None, limit: int, starting_after: str | None,
                      types: list[str] | None = None):
    async with rt.db.read() as conn:
        return await store.select_events_page(conn, merchant_id, event_type, limit, starting_after, types)


def readable_types(scopes: frozenset[str] | None) -> list[str] | None:
    """The event types a caller holding ``scopes`` may read; None (every type) for a merchant key."""
    if scopes is None:
        return None
    return [t for t in EVENT_TYPES if readable(t, scopes)]
