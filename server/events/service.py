"""Recording events: always inside the caller's transaction (the outbox pattern), so nothing
changes without its event and no event exists without its change."""
from __future__ import annotations

import json
from typing import Any

from .. import clock
from ..actors import Actor
from ..db import Conn
from ..ids import new_id
from . import store
from .models import EVENT_TYPES, Event


async def record(
    conn: Conn,
    *,
    merchant_id: str,
    type: str,
    actor: Actor,
    obj: dict[str, Any],
    order_id: str | None = None,
) -> Event:
    assert type in EVENT_TYPES, type
    sequence = await store.next_order_sequence(conn, order_id) if order_id else None
    event = Event(
        id=new_id("evt"),
        merchant_id=merchant_id,
        order_id=order_id,
        sequence=sequence,
        type=type,
        actor_type=actor.type,
        actor_id=actor.id,
        data=json.dumps({"object": obj}, separators=(",", ":"), sort_keys=True),
        created_at=clock.now_iso(),
    )
    await store.insert_event(conn, event)
    return event


async def get_event(rt, merchant_id: str, event_id: str) -> Event:
    from ..errors import not_found

    async with rt.db.read() as conn:
        event = await store.select_event(conn, merchant_id, event_id)
    if event is None:
        raise not_found("event", event_id)
    return event


async def list_events(rt, merchant_id: str, event_type: str | None, limit: int, starting_after: str | None):
    async with rt.db.read() as conn:
        return await store.select_events_page(conn, merchant_id, event_type, limit, starting_after)
