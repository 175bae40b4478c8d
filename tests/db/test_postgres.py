"""The PostgreSQL backend's own mechanics: bind translation, row counts, and a collision the
database refuses becoming a retryable 409 with nothing committed."""
from __future__ import annotations

import asyncio
import os

import pytest

from flint.db import for_update, open_database
from flint.db.migrate import migrate
from flint.db.postgres import _rowcount, split_url, translate
from flint.errors import FlintError
from tests import pg

# PostgreSQL: FLINT_TEST_POSTGRES_URL, else the local server CI starts (.ci/postgres).
POSTGRES_URL = os.environ.get("FLINT_TEST_POSTGRES_URL") or "postgresql://postgres@127.0.0.1:5432/test"


@pytest.mark.parametrize("sql, expected, names", [
    ("SELECT * FROM t WHERE a = :a AND b = :b", "SELECT * FROM t WHERE a = $1 AND b = $2", ("a", "b")),
    ("UPDATE t SET x = x + :n WHERE id = :id AND x + :n <= m", "UPDATE t SET x = x + $1 WHERE id = $2 AND x + $1 <= m",
     ("n", "id")),  # one name used twice is one parameter
    ("SELECT :v::text, 'a:b :c' AS s WHERE k = :k", "SELECT $1::text, 'a:b :c' AS s WHERE k = $2", ("v", "k")),
    ("SELECT 'it''s :x' WHERE y = :y", "SELECT 'it''s :x' WHERE y = $1", ("y",)),
    ("SELECT 1", "SELECT 1", ()),
])
def test_binds_translate_to_numbered_parameters(sql, expected, names):
    assert translate(sql) == (expected, names)


@pytest.mark.parametrize("status, count", [("UPDATE 3", 3), ("INSERT 0 1", 1), ("DELETE 0", 0), ("BEGIN", 0)])
def test_row_counts_come_from_the_command_tag(status, count):
    assert _rowcount(status) == count


def test_pool_size_is_ours_and_other_parameters_go_to_the_server():
    dsn, ours = split_url("postgresql://u:p@db:5432/flint?pool_size=3&sslmode=require&search_path=s")
    assert ours == {"pool_size": "3"}
    assert dsn == "postgresql://u:p@db:5432/flint?sslmode=require&search_path=s"


@pytest.fixture
async def pgdb(monkeypatch):
    if not pg.POSTGRES_URL:
        monkeypatch.setattr(pg, "POSTGRES_URL", POSTGRES_URL)
    schema, url = pg.create_schema()
    db = await open_database(url + "&pool_size=4")
    await migrate(db)
    yield db
    await db.close()
    pg.drop_schema(schema)


async def _merchant(conn, id_: str, email: str) -> None:
    await conn.execute(
        "INSERT INTO merchants (id, name, email, password_hash, allowed_origins, created_at) "
        "VALUES (:id, 'Shop', :email, 'x', '[]', '2026-01-01T00:00:00.000000Z')", {"id": id_, "email": email})


async def test_a_unique_violation_is_a_retryable_409_and_commits_nothing(pgdb):
    assert pgdb.dialect == "postgresql" and pgdb.pool_size == 4
    async with pgdb.transaction() as conn:
        await _merchant(conn, "mer_first", "same@shop.example")
    with pytest.raises(FlintError) as raised:
        async with pgdb.transaction() as conn:
            await _merchant(conn, "mer_before", "other@shop.example")  # rolled back with the rest
            await _merchant(conn, "mer_second", "same@shop.example")
    error = raised.value
    assert (error.status, error.code, error.headers, error.extra) == (
        409, "concurrent_update", {"Retry-After": "1"}, {"reason": "unique_violation"})
    async with pgdb.read() as conn:
        rows = await conn.fetch_all("SELECT id FROM merchants ORDER BY id")
    assert rows == [{"id": "mer_first"}]


async def test_a_deadlock_is_a_retryable_409_for_the_loser_and_the_winner_commits(pgdb):
    async with pgdb.transaction() as conn:
        await _merchant(conn, "mer_a", "a@shop.example")
        await _merchant(conn, "mer_b", "b@shop.example")
    both_locked_one = asyncio.Barrier(2)

    async def lock_in_order(first: str, second: str) -> str:
        async with pgdb.transaction() as conn:
            await conn.fetch_one(f"SELECT id FROM merchants WHERE id = :id{for_update(conn)}", {"id": first})
            await both_locked_one.wait()
            await conn.fetch_one(f"SELECT id FROM merchants WHERE id = :id{for_update(conn)}", {"id": second})
            await conn.execute("UPDATE merchants SET name = :n WHERE id = :id", {"n": f"by {first}", "id": second})
        return first

    results = await asyncio.gather(lock_in_order("mer_a", "mer_b"), lock_in_order("mer_b", "mer_a"),
                                   return_exceptions=True)
    errors = [r for r in results if isinstance(r, Exception)]
    assert len(errors) == 1 and isinstance(errors[0], FlintError), results
    assert (errors[0].code, errors[0].extra) == ("concurrent_update", {"reason": "deadlock_detected"})
    winner = next(r for r in results if isinstance(r, str))
    async with pgdb.read() as conn:
        names = {r["id"]: r["name"] for r in await conn.fetch_all("SELECT id, name FROM merchants")}
    loser_target = "mer_b" if winner == "mer_a" else "mer_a"
    assert names[loser_target] == f"by {winner}" and list(names.values()).count("Shop") == 1


async def test_for_update_is_empty_on_sqlite_and_a_row_lock_on_postgresql(pgdb, sqlite_url):
    sqlite = await open_database(sqlite_url)
    try:
        async with sqlite.read() as conn:
            assert for_update(conn) == "" and for_update(conn, skip_locked=True) == ""
    finally:
        await sqlite.close()
    async with pgdb.read() as conn:
        assert for_update(conn) == " FOR NO KEY UPDATE"
        assert for_update(conn, skip_locked=True) == " FOR NO KEY UPDATE SKIP LOCKED"
