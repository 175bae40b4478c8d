"""What the SQLite backend's tests share: a migrated database on a fresh file, and a row to write."""
import pytest

from flint.db import open_database
from flint.db.migrate import migrate


@pytest.fixture
async def sqlite_db(sqlite_url):
    database = await open_database(sqlite_url)
    await migrate(database)
    yield database
    await database.close()


async def insert_merchant(conn, merchant_id: str) -> None:
    await conn.execute(
        "INSERT INTO merchants (id, name, email, password_hash, allowed_origins, created_at) "
        "VALUES (:id, 'Shop', :id || '@shop.example', 'x', '[]', '2026-01-01T00:00:00.000000Z')", {"id": merchant_id})
