"""The SQLite backend's single write connection survives everything a request can do to it:
a body that raises, a COMMIT that fails, a caller cancelled while waiting for the lock."""
import asyncio
import sqlite3

import pytest

from .conftest import insert_merchant


@pytest.fixture
def db(sqlite_db):
    return sqlite_db


async def _count(db):
    async with db.read() as conn:
        return (await conn.fetch_one("SELECT COUNT(*) AS n FROM merchants"))["n"]


_insert = insert_merchant


async def test_a_raising_body_rolls_back_and_the_next_write_works(db):
    with pytest.raises(RuntimeError):
        async with db.transaction() as conn:
            await _insert(conn, "mer_a")
            raise RuntimeError("boom")
    async with db.transaction() as conn:
        await _insert(conn, "mer_b")
    assert await _count(db) == 1


async def test_a_failing_commit_rolls_back_and_the_next_write_works(db):
    with pytest.raises(sqlite3.IntegrityError):
        async with db.transaction() as conn:
            # Deferred foreign keys are checked at COMMIT: a real commit-time failure.
            await conn.execute("PRAGMA defer_foreign_keys = ON")
            await conn.execute(
                "INSERT INTO api_keys (id, merchant_id, key_hash, last4, created_at) "
                "VALUES ('key_x', 'mer_missing', 'h', 'abcd', '2026-01-01T00:00:00.000000Z')")
    async with db.transaction() as conn:
        await _insert(conn, "mer_c")
    assert await _count(db) == 1


async def test_a_caller_cancelled_while_waiting_for_another_process_lock(db, sqlite_url):
    other = sqlite3.connect(sqlite_url[len("sqlite:///"):], isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another process holds the write lock

    async def write():
        async with db.transaction() as conn:
            await _insert(conn, "mer_never")

    waiting = asyncio.create_task(write())
    await asyncio.sleep(0.3)
    waiting.cancel()
    other.execute("ROLLBACK")  # the lock frees; the cancelled BEGIN completes on its thread
    with pytest.raises(asyncio.CancelledError):
        await waiting
    other.close()
    async with db.transaction() as conn:  # the write connection is usable, not stuck in a transaction
        await _insert(conn, "mer_d")
    assert await _count(db) == 1
