"""Group commit on SQLite (issue 19): concurrent transactions share one COMMIT, yet each caller leaves
its block only once its writes are on disk, a body that raises takes nothing of the others with it,
a failing COMMIT fails every member of its group, and a group left open for a caller who went away
is still committed."""
import asyncio
import sqlite3

import pytest

from .conftest import insert_merchant


@pytest.fixture
def db(sqlite_db):
    return sqlite_db


def _committed(sqlite_url: str) -> set[str]:
    """What another connection (another process) sees: only what is committed."""
    other = sqlite3.connect(sqlite_url[len("sqlite:///"):])
    try:
        return {row[0] for row in other.execute("SELECT id FROM merchants")}
    finally:
        other.close()


_insert = insert_merchant


def _count_commits(db) -> list[str]:
    """The COMMITs the write connection runs, as SQLite traces them."""
    commits: list[str] = []
    db._writer.sync.set_trace_callback(lambda sql: commits.append(sql) if sql == "COMMIT" else None)  # noqa: SLF001
    return commits


async def test_concurrent_transactions_share_commits_and_each_returns_only_once_committed(db, sqlite_url):
    commits = _count_commits(db)
    seen_committed: dict[str, bool] = {}

    async def write(i: int) -> None:
        async with db.transaction() as conn:
            await _insert(conn, f"mer_{i}")
        # Out of the block: the write is on disk, visible to any other connection.
        seen_committed[f"mer_{i}"] = f"mer_{i}" in _committed(sqlite_url)

    await asyncio.gather(*(write(i) for i in range(40)))
    assert seen_committed == {f"mer_{i}": True for i in range(40)}
    assert _committed(sqlite_url) == {f"mer_{i}" for i in range(40)}
    # 40 transactions queued together: far fewer fsyncs than transactions (one each before).
    assert 1 <= len(commits) < 10


async def test_each_body_sees_the_writes_of_the_bodies_before_it_in_its_group(db):
    async def write(i: int) -> int:
        async with db.transaction() as conn:
            await _insert(conn, f"mer_{i}")
            return (await conn.fetch_one("SELECT COUNT(*) AS n FROM merchants"))["n"]

    counts = await asyncio.gather(*(write(i) for i in range(10)))
    assert sorted(counts) == list(range(1, 11))  # serial: the k-th body sees k rows


async def test_a_raising_body_in_a_group_is_rolled_back_alone(db, sqlite_url):
    async def write(i: int) -> None:
        async with db.transaction() as conn:
            await _insert(conn, f"mer_{i}")
            if i % 3 == 0:
                raise ValueError("refused")

    outcomes = await asyncio.gather(*(write(i) for i in range(12)), return_exceptions=True)
    assert [isinstance(o, ValueError) for o in outcomes] == [i % 3 == 0 for i in range(12)]
    assert _committed(sqlite_url) == {f"mer_{i}" for i in range(12) if i % 3}


async def test_a_failing_commit_fails_every_member_of_its_group_and_the_next_write_works(db, sqlite_url):
    started = asyncio.Event()

    async def poison() -> None:
        async with db.transaction() as conn:
            # Deferred foreign keys are checked at COMMIT: a real commit-time failure of the whole group.
            await conn.execute("PRAGMA defer_foreign_keys = ON")
            await conn.execute(
                "INSERT INTO api_keys (id, merchant_id, key_hash, last4, created_at) "
                "VALUES ('key_x', 'mer_missing', 'h', 'abcd', '2026-01-01T00:00:00.000000Z')")
            started.set()
            await asyncio.sleep(0.05)  # the others queue meanwhile and join this group

    async def write(i: int) -> None:
        await started.wait()
        async with db.transaction() as conn:
            await _insert(conn, f"mer_{i}")

    outcomes = await asyncio.gather(poison(), *(write(i) for i in range(5)), return_exceptions=True)
    assert all(isinstance(o, sqlite3.IntegrityError) for o in outcomes), outcomes
    assert _committed(sqlite_url) == set()  # nobody was told "done", and nothing is on disk
    async with db.transaction() as conn:
        await _insert(conn, "mer_after")
    assert _committed(sqlite_url) == {"mer_after"}


async def test_a_member_cancelled_while_its_group_commits_leaves_its_write_committed(db, sqlite_url):
    release = asyncio.Event()

    async def first() -> None:
        async with db.transaction() as conn:
            await _insert(conn, "mer_first")
            await release.wait()  # holds the connection while the second queues

    async def second() -> None:
        async with db.transaction() as conn:
            await _insert(conn, "mer_second")

    holder = asyncio.create_task(first())
    await asyncio.sleep(0.01)
    waiter = asyncio.create_task(second())
    await asyncio.sleep(0.01)
    release.set()
    await asyncio.sleep(0)  # first's body ends and leaves the group open for the queued second
    holder.cancel()  # first's caller goes away while waiting for the group's COMMIT
    await waiter
    with pytest.raises(asyncio.CancelledError):
        await holder
    assert _committed(sqlite_url) == {"mer_first", "mer_second"}


async def test_a_group_left_open_for_a_caller_who_went_away_is_still_committed(db, sqlite_url):
    release = asyncio.Event()

    async def first() -> None:
        async with db.transaction() as conn:
            await _insert(conn, "mer_first")
            await release.wait()

    async def second() -> None:
        async with db.transaction() as conn:
            await _insert(conn, "mer_never")

    holder = asyncio.create_task(first())
    await asyncio.sleep(0.01)
    waiter = asyncio.create_task(second())  # queued: first will leave the group open for it
    await asyncio.sleep(0.01)
    release.set()
    await asyncio.sleep(0)  # first releases the connection to second, which has not run yet...
    waiter.cancel()  # ...and is cancelled before it takes it
    await asyncio.wait_for(holder, 5)  # first is not left waiting for a COMMIT nobody would run
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert _committed(sqlite_url) == {"mer_first"}
