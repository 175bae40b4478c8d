"""aiosqlite backend.

SQLite allows one writer at a time. Every read-then-write runs inside ``BEGIN IMMEDIATE``
on the single write connection, guarded by an asyncio lock, so requests queue in the
process instead of failing with "database is locked"; ``busy_timeout`` covers other
processes (a ``flint worker`` beside ``flint serve``). Reads use a small pool of their
own connections, which WAL lets run beside the writer.
"""
from __future__ import annotations

import asyncio
import sqlite3
from collections import deque
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, AsyncIterator

import aiosqlite

from . import Params

PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    # FULL: a committed payment survives a power cut (NORMAL may lose the last commits in WAL).
    "PRAGMA synchronous=FULL",
    "PRAGMA busy_timeout=10000",
    "PRAGMA foreign_keys=ON",
)


class SqliteConn:
    """Each statement is one hop to aiosqlite's thread (execute and fetch together): the hops,
    not SQLite, are what a query costs here, so they are kept to one per statement."""

    def __init__(self, raw: aiosqlite.Connection) -> None:
        self.raw = raw

    async def fetch_one(self, sql: str, params: Params = None) -> dict[str, Any] | None:
        rows = await self.raw.execute_fetchall(sql, params or {})
        for row in rows:
            return dict(row)
        return None

    async def fetch_all(self, sql: str, params: Params = None) -> list[dict[str, Any]]:
        return [dict(row) for row in await self.raw.execute_fetchall(sql, params or {})]

    async def execute(self, sql: str, params: Params = None) -> int:
        # DML runs to completion inside execute(); the cursor needs no further hop to close.
        cursor = await self.raw.execute(sql, params or {})
        return cursor.rowcount


class _ReaderPool:
    """Reader connections handed out first come, first served. (asyncio.Queue lets a newcomer
    take a connection freed for a woken waiter, which starved some reads for 0.5 s under load.)"""

    def __init__(self) -> None:
        self._idle: list[aiosqlite.Connection] = []
        self._waiters: deque[asyncio.Future[aiosqlite.Connection]] = deque()

    def release(self, raw: aiosqlite.Connection) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(raw)  # handed over directly: nobody can cut in
                return
        self._idle.append(raw)

    async def acquire(self) -> aiosqlite.Connection:
        if self._idle and not self._waiters:
            return self._idle.pop()
        waiter: asyncio.Future[aiosqlite.Connection] = asyncio.get_running_loop().create_future()
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
        self._writer: aiosqlite.Connection | None = None
        self._write_lock = asyncio.Lock()
        self._readers = _ReaderPool()
        self._all: list[aiosqlite.Connection] = []

    async def _connect(self) -> aiosqlite.Connection:
        # isolation_level=None: no implicit transactions; we issue BEGIN IMMEDIATE ourselves,
        # because a deferred read that later upgrades to a write gets SQLITE_BUSY at once.
        raw = await aiosqlite.connect(self.path, isolation_level=None)
        raw.row_factory = sqlite3.Row
        for pragma in PRAGMAS:
            await raw.execute(pragma)
        self._all.append(raw)
        return raw

    async def open(self) -> None:
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._writer = await self._connect()
        for _ in range(self._n_readers):
            self._readers.release(await self._connect())

    async def close(self) -> None:
        for raw in self._all:
            await raw.close()
        self._all.clear()
        self._writer = None

    @asynccontextmanager
    async def read(self) -> AsyncIterator[SqliteConn]:
        raw = await self._readers.acquire()
        try:
            yield SqliteConn(raw)
        finally:
            if raw.in_transaction:
                await raw.rollback()
            self._readers.release(raw)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[SqliteConn]:
        assert self._writer is not None, "database not open"
        async with self._write_lock:
            await self._writer.execute("BEGIN IMMEDIATE")
            try:
                yield SqliteConn(self._writer)
            except BaseException:
                await self._writer.execute("ROLLBACK")
                raise
            else:
                await self._writer.execute("COMMIT")

    async def executescript(self, script: str) -> None:
        assert self._writer is not None, "database not open"
        async with self._write_lock:
            await self._writer.executescript(script)
