"""The statements of a paid checkout each find their rows through an index that matches their most
selective term, on a fresh SQLite file (no ANALYZE statistics, as Flint runs it). Issue 19's profile
found the open sessions of an order looked up through (status, expires_at): a paid confirm then read
every open session of every merchant."""
import re
import sqlite3

import pytest

from flint.config import Config
from flint.db.migrate import migrate
from flint.runtime import Runtime
from support import TEST_SECRET
from support.factories import make_merchant, make_session, pay_session


@pytest.fixture
async def traced(sqlite_url):
    config = Config(database_url=sqlite_url, secret_keys=(TEST_SECRET,), env="development",
                    public_url="http://127.0.0.1:9")
    runtime = await Runtime.start(config)
    await migrate(runtime.db)
    statements: list[str] = []
    for connection in runtime.db._all:  # noqa: SLF001 (the test reads what SQLite runs)
        connection.sync.set_trace_callback(statements.append)
    yield runtime, statements
    await runtime.stop()


def _plan(path: str, sql: str) -> list[str]:
    conn = sqlite3.connect(path)
    try:
        return [row[3] for row in conn.execute("EXPLAIN QUERY PLAN " + sql)]
    finally:
        conn.close()


async def test_a_paid_checkout_reads_every_row_through_a_fitting_index(traced, sqlite_url):
    rt, statements = traced
    merchant, _ = await make_merchant(rt)
    # Open sessions of other orders: what the misplanned lookup used to read through.
    for _ in range(3):
        await make_session(rt, merchant.id)
    statements.clear()
    session = await make_session(rt, merchant.id)
    payment = await pay_session(rt, session)
    assert payment.status == "succeeded"

    path = sqlite_url[len("sqlite:///"):]
    checked = 0
    for sql in statements:
        flat = re.sub(r"\s+", " ", sql).strip()
        if not flat.startswith(("SELECT", "UPDATE", "DELETE")) or " WHERE " not in flat:
            continue
        plan = " | ".join(_plan(path, flat))
        checked += 1
        assert not re.search(r"\bSCAN (?!CONSTANT)\w+", plan), (flat, plan)  # no full scan of a table
        if "FROM checkout_sessions WHERE order_id" in flat:
            assert "(order_id=? AND status=?)" in plan, (flat, plan)
    assert checked >= 10
    assert any("FROM checkout_sessions WHERE order_id" in s for s in statements)  # the lookup was made
