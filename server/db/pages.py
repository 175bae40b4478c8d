"""Cursor pagination, newest first, shared by every list endpoint.

The cursor is an object id (``starting_after``); rows are ordered by (created_at, id) so
that equal timestamps still page deterministically.
"""
from __future__ import annotations

from typing import Any

from flint.db import Conn
from flint.errors import invalid


async def select_page(
    conn: Conn,
    *,
    table: str,
    columns: str,
    where: str,
    params: dict[str, Any],
    limit: int,
    starting_after: str | None,
) -> tuple[list[dict[str, Any]], bool]:
    bind = dict(params, limit=limit + 1)
    cursor_clause = ""
    if starting_after is not None:
        cursor = await conn.fetch_one(
            f"SELECT created_at, id FROM {table} WHERE id = :cursor_id AND {where}",
            dict(params, cursor_id=starting_after),
        )
        if cursor is None:
            raise invalid("starting_after_invalid", f"No such object '{starting_after}' to page after.", "starting_after")
        # A row value, not "a < x OR (a = x AND b < y)": PostgreSQL then bounds the index scan by the
        # cursor instead of filtering every row before it (bench/console.py: 0.4 ms instead of 190 ms
        # half-way down a million orders). SQLite reads both forms the same.
        cursor_clause = " AND (created_at, id) < (:c_at, :c_id)"
        bind.update(c_at=cursor["created_at"], c_id=cursor["id"])
    rows = await conn.fetch_all(
        f"""SELECT {columns} FROM {table} WHERE {where}{cursor_clause}
            ORDER BY created_at DESC, id DESC LIMIT :limit""",
        bind,
    )
    return rows[:limit], len(rows) > limit
