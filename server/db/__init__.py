"""Storage: one interface, SQL written once with ``:name`` binds.

Domains talk to a ``Conn`` (``fetch_one``, ``fetch_all``, ``execute``) obtained from
``db.read()`` (no write intent) or ``db.transaction()`` (read-then-write, serialised and
atomic). Dialect differences stay in this package.
"""
from __future__ import annotations

from typing import Any, AsyncContextManager, Protocol

Params = dict[str, Any] | None


class Conn(Protocol):
    dialect: str  # "sqlite" | "postgresql"

    async def fetch_one(self, sql: str, params: Params = None) -> dict[str, Any] | None: ...
    async def fetch_all(self, sql: str, params: Params = None) -> list[dict[str, Any]]: ...
    async def execute(self, sql: str, params: Params = None) -> int: ...


class Database(Protocol):
    dialect: str

    async def open(self) -> None: ...
    async def close(self) -> None: ...
    def read(self) -> AsyncContextManager[Conn]: ...
    def transaction(self) -> AsyncContextManager[Conn]: ...
    async def lock_migrations(self, conn: Conn) -> None: ...
    # After an erasure commits: let no old copy of the erased rows linger in the database files,
    # where the engine can do that at once (SQLite: checkpoint and truncate the WAL).
    async def compact_after_erasure(self) -> None: ...


async def insert_rows(conn: Conn, table: str, columns: str, rows: list[Any]) -> None:
    """One multi-row INSERT of objects' attributes named in ``columns`` ("a, b, c"): a change that
    writes several rows (events, deliveries, attempts) costs one statement, not one each."""
    if not rows:
        return
    names = [name.strip() for name in columns.split(",")]
    binds: dict[str, Any] = {}
    values = []
    for i, row in enumerate(rows):
        values.append("(" + ", ".join(f":{name}_{i}" for name in names) + ")")
        binds.update({f"{name}_{i}": getattr(row, name) for name in names})
    await conn.execute(f"INSERT INTO {table} ({columns}) VALUES {', '.join(values)}", binds)


def for_update(conn: Conn, *, skip_locked: bool = False) -> str:
    """The row-lock suffix for a SELECT inside ``transaction()`` whose rows the transaction then
    decides on. PostgreSQL locks them (READ COMMITTED would let two processes read the same
    state and both act on it); with ``skip_locked`` concurrent claimers take disjoint rows.
    SQLite needs nothing: ``BEGIN IMMEDIATE`` already holds the whole database.

    ``FOR NO KEY UPDATE``: exclusive against every other locker of the row, but (unlike ``FOR
    UPDATE``) it lets other transactions insert rows that reference it (an event or a hook call
    for a locked order, a delivery for a locked endpoint) without waiting. Flint never changes a
    key, so nothing needs the stronger lock."""
    if conn.dialect == "postgresql":
        return " FOR NO KEY UPDATE SKIP LOCKED" if skip_locked else " FOR NO KEY UPDATE"
    return ""


def database_for(url: str, *, readers: int = 4, pool_size: int = 10) -> Database:
    if url.startswith("sqlite:///"):
        from flint.db.sqlite import SqliteDatabase

        return SqliteDatabase(url[len("sqlite:///"):], readers=readers)
    if url.startswith(("postgresql://", "postgres://")):
        from flint.db.postgres import PostgresDatabase

        return PostgresDatabase(url, pool_size=pool_size)
    raise ValueError(f"Unsupported FLINT_DATABASE_URL: {url.split(':', 1)[0]}://...")


async def open_database(url: str, *, readers: int = 4, pool_size: int = 10) -> Database:
    db = database_for(url, readers=readers, pool_size=pool_size)
    await db.open()
    return db
