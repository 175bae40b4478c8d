"""aiosqlite backend.

SQLite allows one writer at a time. Every read-then-write runs inside ``BEGIN IMMEDIATE``
on the single write connection, guarded by an asyncio lock, so requests queue in the
process instead of failing with "database is locked"; ``busy_timeout`` covers other
processes (a ``flint worker`` beside ``flint serve``). Reads use a small pool of their
own connections, which WAL lets run beside the writer.

Where the time goes: aiosqlite runs each call on the connection's own thread, and that
hand-off (queue, thread wake-up, loop wake-up) costs far more CPU than the indexed point
queries Flint makes, which SQLite answers from its page cache in microseconds. So only the
calls that can wait run on aiosqlite's thread: ``BEGIN IMMEDIATE`` (it may wait for another
process's write lock) and ``COMMIT`` (it fsyncs). The statements in between run directly on
the same sqlite3 connection, which is safe because the transaction lock (or the reader pool)
gives one coroutine at a time the connection, and aiosqlite's thread is idle until awaited.
"""
from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections import deque
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, AsyncIterator

import aiosqlite

from flint.db import Params

log = logging.getLogger("flint.db")

PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    # FULL: a committed payment survives a power cut (NORMAL may lose the last commits in WAL).
    "PRAGMA synchronous=FULL",
    "PRAGMA busy_timeout=10000",
    "PRAGMA foreign_keys=ON",
    # Deleted or overwritten content is zeroed, not left in free space of the file: an erased buyer's
    # details (POST /v1/orders/{id}/redact) must not stay readable in the database file.
    "PRAGMA secure_delete=ON",
)


class SqliteConn:
    dialect = "sqlite"

    def __init__(self, sync: sqlite3.Connection) -> None:
        self.sync = sync

    async def fetch_one(self, sql: str, params: Params = None) -> dict[str, Any] | None:
        row = self.sync.execute(sql, params or {}).fetchone()
        return dict(row) if row is not None else None

    async def fetch_all(self, sql: str, params: Params = None) -> list[dict[str, Any]]:
        return [dict(row) for row in self.sync.execute(sql, params or {}).fetchall()]

    async def execute(self, sql: str, params: Params = None) -> int:
        return self.sync.execute(sql, params or {}).rowcount


class _Connection:
    """An aiosqlite connection and the sqlite3 connection it wraps."""

    def __init__(self, raw: aiosqlite.Connection, sync: sqlite3.Connection) -> None:
        self.raw = raw
        self.sync = sync


class _ReaderPool:
    """Reader connections handed out first come, first served. (asyncio.Queue lets a newcomer
    take a connection freed for a woken waiter, which starved some reads for 0.5 s under load.)"""

    def __init__(self) -> None:
        self._idle: list[_Connection] = []
        self._waiters: deque[asyncio.Future[_Connection]] = deque()

    def release(self, connection: _Connection) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(connection)  # handed over directly: nobody can cut in
                return
        self._idle.append(connection)

    async def acquire(self) -> _Connection:
        if self._idle and not self._waiters:
            return self._idle.pop()
        waiter: asyncio.Future[_Connection] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            return await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.release(waiter.result())  # it arrived as we were cancelled: pass it on
            raise


class SqliteDatabase:
    dialect = "sqlite"

    def __init__(self, path: str, *, readers: int = 4) -> None:
        self.path = path
        self._n_readers = max(1, readers)
        self._writer: _Connection | None = None
        self._write_lock = asyncio.Lock()
        self._readers = _ReaderPool()
        self._all: list[_Connection] = []

    async def _connect(self) -> _Connection:
        created: list[sqlite3.Connection] = []

        def connector() -> sqlite3.Connection:
            # isolation_level=None: no implicit transactions; we issue BEGIN IMMEDIATE ourselves,
            # because a deferred read that later upgrades to a write gets SQLITE_BUSY at once.
            # check_same_thread=False: statements run on the loop's thread (see the module doc).
            sync = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            sync.row_factory = sqlite3.Row
            created.append(sync)
            return sync

        raw = await aiosqlite.Connection(connector, 64)
        for pragma in PRAGMAS:
            await raw.execute(pragma)
        connection = _Connection(raw, created[0])
        self._all.append(connection)
        return connection

    async def open(self) -> None:
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._writer = await self._connect()
        for _ in range(self._n_readers):
            self._readers.release(await self._connect())

    async def close(self) -> None:
        for connection in self._all:
            await connection.raw.close()
        self._all.clear()
        self._writer = None

    @asynccontextmanager
    async def read(self) -> AsyncIterator[SqliteConn]:
        connection = await self._readers.acquire()
        try:
            yield SqliteConn(connection.sync)
        finally:
            if connection.sync.in_transaction:
                connection.sync.rollback()
            self._readers.release(connection)

    @staticmethod
    async def _on_thread(connection: _Connection, sql: str) -> None:
        """Run on aiosqlite's thread. A caller cancelled meanwhile does not stop the statement,
        so before the cancellation goes on we wait until the thread is done with it: a no-op
        queued behind it finishes only after it (aiosqlite runs its queue in order)."""
        try:
            await connection.raw.execute(sql)
        except asyncio.CancelledError:
            drained = asyncio.ensure_future(connection.raw.execute("SELECT 1"))
            while not drained.done():
                try:
                    await asyncio.shield(drained)
                except asyncio.CancelledError:
                    pass
            raise

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[SqliteConn]:
        writer = self._writer
        assert writer is not None, "database not open"
        async with self._write_lock:
            try:
                await self._on_thread(writer, "BEGIN IMMEDIATE")  # may wait for another process
                yield SqliteConn(writer.sync)
                await self._on_thread(writer, "COMMIT")  # fsyncs
            finally:
                # Whatever went wrong (the body raised, COMMIT failed, we were cancelled), the one
                # write connection must not stay inside a transaction: every later write would fail.
                if writer.sync.in_transaction:
                    writer.sync.execute("ROLLBACK")

    async def compact_after_erasure(self) -> None:
        """After a committed erasure: copy the WAL into the database file and truncate it to zero
        bytes, so the pages that held the erased data (left in WAL frames until a checkpoint, and in
        the log file until it is restarted) are gone from both files; secure_delete has zeroed the
        old content inside the pages the checkpoint writes back.

        Shielded: the erasure is committed, so a caller that goes away (a client that disconnected)
        must not leave its old copies behind. The checkpoint waits up to busy_timeout for other
        processes' readers and writers; a database still busy then keeps the frames until the next
        checkpoint, which the log says."""
        await asyncio.shield(self._checkpoint_truncate())

    async def _checkpoint_truncate(self) -> None:
        writer = self._writer
        assert writer is not None, "database not open"
        # Under the write lock: this connection is between transactions (a checkpoint cannot run
        # inside one), and on aiosqlite's thread, since it may wait for other processes.
        async with self._write_lock:
            cursor = await writer.raw.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            busy, frames, copied = await cursor.fetchone()
            await cursor.close()
        if busy:
            log.warning("WAL checkpoint after an erasure was busy: %s of %s frames copied", copied, frames)

    async def lock_migrations(self, conn: SqliteConn) -> None:
        """Nothing to take: the migration's BEGIN IMMEDIATE already excludes other processes."""
