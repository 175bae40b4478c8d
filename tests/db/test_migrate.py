"""`flint migrate`: numbered migrations, a no-op when current, an upgrade from older schemas."""
import json
import subprocess
import sys

from flint.db import open_database
from flint.db.migrate import available, migrate
from support import ROOT


async def _versions(db):
    async with db.read() as conn:
        return [r["version"] for r in await conn.fetch_all("SELECT version FROM schema_migrations ORDER BY version")]


async def _schema(db):
    async with db.read() as conn:
        if db.dialect == "sqlite":
            return await conn.fetch_all("SELECT type, name, sql FROM sqlite_master ORDER BY name")
        columns = await conn.fetch_all(
            """SELECT table_name, column_name, data_type, is_nullable, column_default
               FROM information_schema.columns WHERE table_schema = current_schema()
               ORDER BY table_name, column_name""")
        indexes = await conn.fetch_all(
            "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema() ORDER BY indexname")
        return columns + indexes


async def _tables(db) -> set[str]:
    sql = ("SELECT name FROM sqlite_master WHERE type = 'table'" if db.dialect == "sqlite" else
           "SELECT table_name AS name FROM information_schema.tables WHERE table_schema = current_schema()")
    async with db.read() as conn:
        return {r["name"] for r in await conn.fetch_all(sql)}


async def test_migrate_on_a_current_database_is_a_no_op(db_url):
    db = await open_database(db_url)
    try:
        first = await migrate(db)
        assert first == [m.version for m in available(db.dialect)] and len(first) >= 2
        before = await _schema(db)
        assert await migrate(db) == []
        assert await _schema(db) == before
    finally:
        await db.close()


async def test_migrate_upgrades_an_older_schema_and_keeps_its_data(db_url):
    db = await open_database(db_url)
    try:
        assert await migrate(db, target=1) == [1]
        async with db.transaction() as conn:
            await conn.execute(
                "INSERT INTO merchants (id, name, email, password_hash, allowed_origins, created_at) "
                "VALUES ('mer_old', 'Old Shop', 'old@shop.example', 'x', '[]', '2026-01-01T00:00:00.000000Z')")
        assert "idempotency_keys" not in await _tables(db)
        assert await migrate(db) == [m.version for m in available() if m.version > 1]
        assert await _versions(db) == [m.version for m in available()]
        async with db.read() as conn:
            assert (await conn.fetch_one("SELECT name FROM merchants WHERE id = 'mer_old'"))["name"] == "Old Shop"
            assert await conn.fetch_one("SELECT COUNT(*) AS n FROM idempotency_keys") == {"n": 0}
    finally:
        await db.close()


def test_flint_migrate_command(tmp_path):
    env = {"FLINT_DATABASE_URL": f"sqlite:///{tmp_path / 'cli.sqlite3'}", "PATH": "/usr/bin:/bin"}
    run = lambda: subprocess.run([sys.executable, "-m", "flint.cli", "migrate"], cwd=ROOT, env=env,  # noqa: E731
                                 capture_output=True, text=True, timeout=60)
    first, second = run(), run()
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout)["applied"] == [m.version for m in available()]
    assert json.loads(second.stdout) == {"applied": []}


async def test_sqlite_is_configured_for_durability(sqlite_url):
    db = await open_database(sqlite_url)
    try:
        async with db.read() as conn:
            assert (await conn.fetch_one("PRAGMA journal_mode"))["journal_mode"] == "wal"
            assert (await conn.fetch_one("PRAGMA synchronous"))["synchronous"] == 2  # FULL
            assert (await conn.fetch_one("PRAGMA foreign_keys"))["foreign_keys"] == 1
            assert (await conn.fetch_one("PRAGMA busy_timeout"))["timeout"] >= 5000
    finally:
        await db.close()
