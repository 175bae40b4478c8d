"""SQL for the audit trail (the audit_log table, migration 0017). Rows are only ever inserted and read,
and every read names the merchant."""
from __future__ import annotations

from flint.audit.models import Entry
from flint.db import Conn
from flint.db.pages import select_page

_FIELDS = ("id", "merchant_id", "actor_type", "actor_id", "action", "object_id", "changes", "created_at")
_COLUMNS = ", ".join(_FIELDS)


async def insert_entry(conn: Conn, entry: Entry) -> None:
    await conn.execute(f"INSERT INTO audit_log ({_COLUMNS}) VALUES ({', '.join(':' + f for f in _FIELDS)})",
                       {f: getattr(entry, f) for f in _FIELDS})


async def select_entries_page(conn: Conn, merchant_id: str, limit: int,
                              starting_after: str | None) -> tuple[list[Entry], bool]:
    """The merchant's entries, newest first (keyset on created_at, id: index audit_log_merchant); a
    cursor of another merchant's entry is 400 starting_after_invalid, as an unknown one."""
    rows, more = await select_page(conn, table="audit_log", columns=_COLUMNS, where="merchant_id = :merchant_id",
                                   params={"merchant_id": merchant_id}, limit=limit, starting_after=starting_after)
    return [Entry(**row) for row in rows], more
