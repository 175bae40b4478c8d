"""SQL for events (the outbox)."""
from __future__ import annotations

from flint.db import Conn, insert_rows
from flint.db.pages import select_page
from flint.events.models import Event

_FIELDS = ("id", "merchant_id", "order_id", "sequence", "type", "actor_type", "actor_id", "data", "created_at")
_COLUMNS = ", ".join(_FIELDS)


async def insert_events(conn: Conn, events: list[Event]) -> None:
    await insert_rows(conn, "events", _COLUMNS, events)


def _only(types: list[str] | None, params: dict) -> str:
    """A caller that may read only some event types (an app: docs/api.md 12): `AND type IN (...)`."""
    if types is None:
        return ""
    params.update({f"t{i}": t for i, t in enumerate(types)})
    return f" AND type IN ({', '.join(f':t{i}' for i in range(len(types)))})" if types else " AND 1 = 0"


async def select_event(conn: Conn, merchant_id: str, event_id: str, types: list[str] | None = None) -> Event | None:
    params = {"id": event_id, "merchant_id": merchant_id}
    row = await conn.fetch_one(
        f"SELECT {_COLUMNS} FROM events WHERE id = :id AND merchant_id = :merchant_id" + _only(types, params), params)
    return Event.from_row(row) if row else None


async def select_order_events(conn: Conn, order_id: str, after: int, limit: int,
                              types: list[str] | None = None) -> list[Event]:
    params = {"order_id": order_id, "after": after, "limit": limit}
    rows = await conn.fetch_all(
        f"""SELECT {_COLUMNS} FROM events
            WHERE order_id = :order_id AND sequence > :after{_only(types, params)}
            ORDER BY sequence LIMIT :limit""", params)
    return [Event.from_row(r) for r in rows]


async def select_events_page(
    conn: Conn, merchant_id: str, event_type: str | None, limit: int, starting_after: str | None,
    types: list[str] | None = None,
) -> tuple[list[Event], bool]:
    params: dict = {"merchant_id": merchant_id}
    where = "merchant_id = :merchant_id" + _only(types, params)
    if event_type is not None:
        where += " AND type = :type"
        params["type"] = event_type
    rows, has_more = await select_page(conn, table="events", columns=_COLUMNS, where=where, params=params,
                                       limit=limit, starting_after=starting_after)
    return [Event.from_row(r) for r in rows], has_more


async def select_events_by_ids(conn: Conn, ids: list[str]) -> dict[str, Event]:
    if not ids:
        return {}
    binds = {f"e{i}": value for i, value in enumerate(ids)}
    rows = await conn.fetch_all(
        f"SELECT {_COLUMNS} FROM events WHERE id IN ({', '.join(':' + name for name in binds)})", binds)
    return {row["id"]: Event.from_row(row) for row in rows}


async def select_order_event_data(conn: Conn, order_id: str) -> list[tuple[str, str]]:
    """(id, data) of every event of one order, in sequence order: what an erasure rewrites."""
    rows = await conn.fetch_all("SELECT id, data FROM events WHERE order_id = :order_id ORDER BY sequence",
                                {"order_id": order_id})
    return [(row["id"], row["data"]) for row in rows]


async def update_event_data(conn: Conn, changed: dict[str, str]) -> None:
    """Replace stored snapshots (event id → new data text). Only an erasure does this: events are
    otherwise never changed once written."""
    for event_id, data in changed.items():
        await conn.execute("UPDATE events SET data = :data WHERE id = :id", {"id": event_id, "data": data})
