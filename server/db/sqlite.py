"""aiosqlite backend.

SQLite allows one writer at a time. Every read-then-write runs inside ``BEGIN IMMEDIATE``
on the single write connection, guarded by an asyncio lock, so requests queue in the
process instead of failing with "database is locked"; ``busy_timeout`` covers other
processes (a ``flint worker`` beside ``flint serve``). Reads use a small pool of their
own connections, which WAL lets run beside the writer. Concurrent transactions share one
COMMIT (group commit, ``transaction()``): with ``synchronous=FULL`` every commit is an fsync,
and one fsync at a time was the ceiling of the whole write path.

Where the time goes: aiosqlite runs each call on the connection's own thread, and that
hand-off (queue, thread wake-up, loop wake-up) costs far more CPU than the indexed point
queries Flint makes, which SQLite answers from its page cache in microseconds. So only the
calls that can wait run on aiosqlite's thread: ``BEGIN IMMEDIATE`` when another process holds
the write lock, and ``COMMIT`` (it fsyncs). The statements in between run directly on
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

BUSY_TIMEOUT_MS = 10000  # another process's write (a `flint worker` beside `flint serve`) is waited for
# Group commit: at most this many request transactions share one COMMIT (bounds how much one failure
# can take with it, and how long the first member waits behind the others' bodies).
MAX_GROUP = 64

PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    # FULL: a committed payment survives a power cut (NORMAL may lose the last commits in WAL).
    "PRAGMA synchronous=FULL",
    f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}",
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


class _Group:
    """Request transactions sharing one SQLite transaction (group commit); ``committed`` is resolved
    when its COMMIT is on disk, or carries the error that stopped it."""

    __slots__ = ("committed", "members")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.committed: asyncio.Future[None] = loop.create_future()
        self.members = 0

    def fail(self, error: BaseException) -> None:
        if not self.committed.done():
            self.committed.set_exception(error)
            self.committed.exception()  # retrieved: a group whose members all left is not an error log


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
        self._write_lock = asyncio.Lock()  # the write connection, one body (or COMMIT) at a time
        self._queued = 0  # callers waiting for it: while there are some, a group stays open for them
        self._group: _Group | None = None  # the SQLite transaction the next body joins, if open
        self._commits: set[asyncio.Future] = set()
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
        if self._writer is not None:
            await self._flush()
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
        """One request's read-then-write, atomic and serialised, durable when the block exits.

        Group commit: concurrent transactions share one SQLite transaction and one fsync. Each body
        runs alone on the write connection inside its own SAVEPOINT (a body that raises is rolled
        back to it, leaving the others' work alone). When a body ends and others are queued for the
        connection, the SQLite transaction stays open for them; the last one of the group (no one
        queued, or ``MAX_GROUP`` members) COMMITs for all. Every member leaves the block only once
        that COMMIT is on disk, and if it fails every member raises it: nobody is told "done" early.

        What a body sees is unchanged: the bodies still run one at a time, each seeing everything
        the ones before it wrote (as serial transactions would); readers on other connections see a
        group's writes only once it is committed, as before. What changes is the cost: one
        ``BEGIN IMMEDIATE`` and one fsync per group rather than per request, and no thread hand-off
        per request (under load, each hand-off held the lock through a whole turn of the event loop).
        """
        writer = self._writer
        assert writer is not None, "database not open"
        await self._acquire()
        group: _Group | None = None
        try:
            group = self._group or await self._begin(writer)
            writer.sync.execute("SAVEPOINT flint_tx")
            try:
                yield SqliteConn(writer.sync)
            except BaseException:
                if writer.sync.in_transaction:
                    writer.sync.execute("ROLLBACK TO flint_tx")
                    writer.sync.execute("RELEASE flint_tx")
                raise
            writer.sync.execute("RELEASE flint_tx")
            group.members += 1
        finally:
            self._hand_on(writer, group)
        # Shielded: a member cancelled now (its client went away) does not stop the group's COMMIT.
        await asyncio.shield(group.committed)

    async def _acquire(self) -> None:
        self._queued += 1
        try:
            await self._write_lock.acquire()
        except asyncio.CancelledError:
            self._queued -= 1
            self._watch_orphan()  # it may have been the one the last member left the group open for
            raise
        self._queued -= 1

    async def _begin(self, writer: _Connection) -> _Group:
        """``BEGIN IMMEDIATE`` on the loop's thread when the file's write lock is free (microseconds);
        only when another process holds it do we wait for it on aiosqlite's thread (busy_timeout)."""
        try:
            writer.sync.execute("PRAGMA busy_timeout=0")
            try:
                writer.sync.execute("BEGIN IMMEDIATE")
            finally:
                writer.sync.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        except sqlite3.OperationalError as error:
            if writer.sync.in_transaction or "locked" not in str(error) and "busy" not in str(error):
                raise
            await self._on_thread(writer, "BEGIN IMMEDIATE")  # may wait for another process
        self._group = _Group(asyncio.get_running_loop())
        return self._group

    def _hand_on(self, writer: _Connection, group: _Group | None) -> None:
        """After a body (or a failed BEGIN): leave the group open for the next one queued, or end it.
        Releases the connection, or hands that to the COMMIT, which releases it when done."""
        if group is None or not writer.sync.in_transaction:
            # BEGIN failed (or was cancelled, perhaps after it went through on the thread), or a
            # statement ended the transaction under us: nothing of this group can still be committed.
            if group is None and writer.sync.in_transaction:
                writer.sync.execute("ROLLBACK")
            if group is not None:
                self._group = None
                group.fail(sqlite3.OperationalError("the transaction ended before its commit"))
            self._write_lock.release()
            return
        if self._queued and group.members < MAX_GROUP:
            # Left open for the next one queued; should that one be cancelled before it takes the
            # connection, its _acquire sees to the group (_watch_orphan).
            self._write_lock.release()
            return
        self._group = None
        if group.members == 0:  # every body of the group raised: nothing to write
            writer.sync.execute("ROLLBACK")
            group.committed.set_result(None)
            self._write_lock.release()
            return
        task = asyncio.ensure_future(self._commit(writer, group))
        self._commits.add(task)
        task.add_done_callback(self._commits.discard)

    async def _commit(self, writer: _Connection, group: _Group) -> None:
        """COMMIT (the fsync) on aiosqlite's thread, as a task of its own: no member's cancellation
        can interrupt it. Holds the connection until the outcome is known (even when the task itself is
        cancelled at shutdown: ``_on_thread`` waits for the thread to be done with the COMMIT)."""
        try:
            await self._on_thread(writer, "COMMIT")
        except BaseException as error:  # noqa: BLE001 - every member gets the outcome, whatever it is
            if writer.sync.in_transaction:
                writer.sync.execute("ROLLBACK")
            group.fail(error if isinstance(error, Exception) else sqlite3.OperationalError("commit interrupted"))
            if not isinstance(error, Exception):
                raise
        else:
            group.committed.set_result(None)
        finally:
            self._write_lock.release()

    def _watch_orphan(self) -> None:
        """A group left open for a queued caller who then went away (cancelled) would wait forever:
        once the loop has let any other woken caller run, commit the group if nobody holds the
        connection or waits for it."""
        group = self._group
        if group is None:
            return

        def check() -> None:
            if self._group is group and not self._write_lock.locked() and not self._queued:
                task = asyncio.ensure_future(self._flush())
                self._commits.add(task)
                task.add_done_callback(self._commits.discard)

        asyncio.get_running_loop().call_soon(check)

    async def _flush(self) -> None:
        """Commit the open group, if any, now (shutdown, a checkpoint, an orphaned group)."""
        writer = self._writer
        await self._write_lock.acquire()
        group, self._group = self._group, None
        if group is None or writer is None:
            self._write_lock.release()
            return
        if group.members == 0:
            if writer.sync.in_transaction:
                writer.sync.execute("ROLLBACK")
            group.committed.set_result(None)
            self._write_lock.release()
            return
        await self._commit(writer, group)

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
        # inside one: an open group is committed first), and on aiosqlite's thread, since it may wait
        # for other processes.
        await self._flush()
        async with self._write_lock:
            cursor = await writer.raw.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            busy, frames, copied = await cursor.fetchone()
            await cursor.close()
        if busy:
            log.warning("WAL checkpoint after an erasure was busy: %s of %s frames copied", copied, frames)

    async def lock_migrations(self, conn: SqliteConn) -> None:
        """Nothing to take: the migration's BEGIN IMMEDIATE already excludes other processes."""
