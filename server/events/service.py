"""Recording events: always inside the caller's transaction (the outbox pattern), so nothing
changes without its event and no event exists without its change."""
from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from flint import clock
from flint.actors import Actor
from flint.db import Conn
from flint.events import store
from flint.events.models import EVENT_TYPES, Event
from flint.ids import new_id
from flint.scopes import readable


async def record_all(
    conn: Conn,
    *,
    merchant_id: str,
    actor: Actor,
    items: list[tuple[str, dict[str, Any]]],
    order_id: str | None = None,
) -> list[Event]:
    """Record several events of one change, in order, with consecutive sequence numbers."""
    for type, _ in items:
        assert type in EVENT_TYPES, type
    last = await store.reserve_order_sequences(conn, order_id, len(items)) if order_id else None
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
            data=json.dumps({"object": obj}, separators=(",", ":"), sort_keys=True),
            # One microsecond apart, so lists ordered by time keep the change's own order.
            created_at=clock.iso(now + timedelta(microseconds=i)),
        )
        for i, (type, obj) in enumerate(items)
    ]
    await store.insert_events(conn, events)
    # The outbox: each subscribed webhook endpoint's delivery commits (or not) with its event.
    from flint.webhooks.service import fan_out

    await fan_out(conn, events)
    return events


async def record(
    conn: Conn,
    *,
    merchant_id: str,
    type: str,
    actor: Actor,
    obj: dict[str, Any],
    order_id: str | None = None,
) -> Event:
    return (await record_all(conn, merchant_id=merchant_id, actor=actor, items=[(type, obj)], order_id=order_id))[0]


async def get_event(rt, merchant_id: str, event_id: str, types: list[str] | None = None) -> Event:
    """``types``: the event types the caller may read (an app: API.md 12); None: all."""
    from flint.errors import not_found

    async with rt.db.read() as conn:
        event = await store.select_event(conn, merchant_id, event_id, types)
    if event is None:
        raise not_found("event", event_id)
    return event


async def list_events(rt, merchant_id: str, event_type: str | None, limit: int, starting_after: str | None,
                      types: list[str] | None = None):
    async with rt.db.read() as conn:
        return await store.select_events_page(conn, merchant_id, event_type, limit, starting_after, types)


def readable_types(scopes: frozenset[str] | None) -> list[str] | None:
    """The event types a caller holding ``scopes`` may read; None (every type) for a merchant key."""
    if scopes is None:
        return None
    return [t for t in EVENT_TYPES if readable(t, scopes)]
