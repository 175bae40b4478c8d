"""asyncpg backend, for several Flint processes on one database.

The domain SQL is the same as SQLite's: ``:name`` binds are rewritten here to asyncpg's
``$n`` once per statement text (and cached), and rows come back as plain dicts.

Concurrency model. SQLite serialises every write transaction (``BEGIN IMMEDIATE``); here
transactions run side by side at READ COMMITTED, so each read-then-write locks what it
decides on: the store reads its "root" row with ``for_update(conn)`` (the order for a
payment or refund, the session for a drop-off, ...), outbox and sweeper claims use
``FOR UPDATE SKIP LOCKED`` so several workers take disjoint rows, and conditional UPDATEs
(``WHERE status = 'open'``) are re-checked by PostgreSQL after waiting for a row lock.
Unique constraints are the last line (one succeeded payment per order, one recovery link
per session, one idempotency key per scope).

A unique violation, deadlock or serialization failure means another process changed the same
thing at the same moment: the transaction is rolled back whole and the caller gets a
retryable 409 ``concurrent_update`` instead of a 500.
"""
from __future__ import annotations

import re
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import asyncpg

from flint.db import Params
from flint.errors import FlintError

# A quoted literal (skipped), or a ":name" bind that is not half of a "::type" cast.
_TOKEN = re.compile(r"'(?:[^']|'')*'|(?<![:\w]):([A-Za-z_][A-Za-z0-9_]*)")
_CACHE_LIMIT = 2048

# SQLSTATEs that mean "a concurrent transaction got there first; try again".
_CONCURRENT = {"23505": "unique_violation", "40001": "serialization_failure", "40P01": "deadlock_detected"}


_translated: dict[str, tuple[str, tuple[str, ...]]] = {}


def translate(sql: str) -> tuple[str, tuple[str, ...]]:
    """``:name`` binds → ``$1..$n`` and the names in order (a name used twice is one ``$n``)."""
    hit = _translated.get(sql)
    if hit is not None:
        return hit
    names: list[str] = []

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name is None:
            return match.group(0)
        if name not in names:
            names.append(name)
        return f"${names.index(name) + 1}"

    result = (_TOKEN.sub(replace, sql), tuple(names))
    if len(_translated) < _CACHE_LIMIT:  # texts built per call (IN lists, multi-row INSERTs) stop here
        _translated[sql] = result
    return result


def _args(names: tuple[str, ...], params: Params) -> list[Any]:
    params = params or {}
    try:
        return [params[name] for name in names]
    except KeyError as missing:
        raise KeyError(f"SQL bind {missing} has no value") from None


def _rowcount(status: str) -> int:
    # asyncpg returns the command tag: "UPDATE 3", "INSERT 0 1", "DELETE 0", "SELECT 2".
    last = status.rsplit(" ", 1)[-1]
    return int(last) if last.isdigit() else 0


def _concurrent_update(error: asyncpg.PostgresError) -> FlintError:
    return FlintError(
        409, "concurrent_update",
        "Another request changed the same object at the same moment. Nothing was changed; retry the request.",
        headers={"Retry-After": "1"},
        extra={"reason": _CONCURRENT[error.sqlstate]},
    )


class PostgresConn:
    dialect = "postgresql"

    def __init__(self, raw: asyncpg.Connection) -> None:
        self.raw = raw

    async def fetch_one(self, sql: str, params: Params = None) -> dict[str, Any] | None:
        text, names = translate(sql)
        row = await self.raw.fetchrow(text, *_args(names, params))
        return dict(row) if row is not None else None

    async def fetch_all(self, sql: str, params: Params = None) -> list[dict[str, Any]]:
        text, names = translate(sql)
        return [dict(row) for row in await self.raw.fetch(text, *_args(names, params))]

    async def execute(self, sql: str, params: Params = None) -> int:
        text, names = translate(sql)
        return _rowcount(await self.raw.execute(text, *_args(names, params)))


def split_url(url: str) -> tuple[str, dict[str, str]]:
    """Our own query parameters off the DSN; the rest (and ``search_path``, ``application_name``,
    any server setting) goes to asyncpg, which passes unknown ones to the server as settings."""
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    ours = {key: query.pop(key) for key in ("pool_size",) if key in query}
    return urlunsplit(parts._replace(query=urlencode(query))), ours


async def _keep_session(raw: asyncpg.Connection) -> None:
    """Instead of asyncpg's reset on every release (UNLISTEN, RESET ALL, advisory unlock, CLOSE:
    a round trip per request that cost a fifth of the server's database time in the scale-out
    bench). Flint leaves no session state to reset: no SET, LISTEN, cursors or session-level
    advisory locks (migrations use transaction-level ones). asyncpg still rolls back any
    transaction left open before calling this."""


class PostgresDatabase:
    dialect = "postgresql"

    def __init__(self, url: str, *, pool_size: int = 10) -> None:
        self.dsn, options = split_url(url)
        self.pool_size = int(options.get("pool_size", pool_size))
        self._pool: asyncpg.Pool | None = None

    async def open(self) -> None:
        # Prepared statements are cached per connection (asyncpg's default): most Flint statements
        # are fixed texts, so each is parsed and planned once per connection.
        self._pool = await asyncpg.create_pool(
            self.dsn, min_size=min(2, self.pool_size), max_size=self.pool_size,
            # A connection idle inside a transaction would hold its row locks for ever.
            server_settings={"idle_in_transaction_session_timeout": "60000"},
            reset=_keep_session,
        )

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    def _require_pool(self) -> asyncpg.Pool:
        assert self._pool is not None, "database not open"
        return self._pool

    @asynccontextmanager
    async def read(self) -> AsyncIterator[PostgresConn]:
        async with self._require_pool().acquire() as raw:
            yield PostgresConn(raw)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[PostgresConn]:
        async with self._require_pool().acquire() as raw:
            try:
                async with raw.transaction():  # READ COMMITTED; rolled back if the body raises
                    yield PostgresConn(raw)
            except asyncpg.PostgresError as error:
                if error.sqlstate in _CONCURRENT:
                    raise _concurrent_update(error) from error
                raise

    async def compact_after_erasure(self) -> None:
        """Nothing to do at once: an UPDATE leaves the old row version in the table's file (and the
        old values in the server's WAL segments) until VACUUM (autovacuum, or by hand) reclaims it;
        a request cannot run VACUUM (not inside a transaction, and it is a table-wide job). The
        reference says so to operators."""

    async def lock_migrations(self, conn: PostgresConn) -> None:
        """Two processes starting at once migrate one after the other (held to COMMIT)."""
        await conn.execute("SELECT pg_advisory_xact_lock(7249001)")
