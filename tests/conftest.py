"""Fixtures: a fresh migrated database per test (``rt``), and a real ``flint serve`` process
on a free loopback port (``server``, support/server.py) with its own SQLite file, logs captured to a file."""
from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from flint import clock
from flint.config import Config
from flint.db.migrate import migrate
from flint.runtime import Runtime

from support import TEST_SECRET
from support.factories import make_merchant
from support.server import LiveServer, start_server, stop_server

from . import pg

# Storage, service and race tests run on every backend available: SQLite always, PostgreSQL when
# FLINT_TEST_POSTGRES_URL is set (`.ci/run` sets it). FLINT_TEST_BACKEND=postgresql also puts the
# live `server` fixture (all HTTP tests) on PostgreSQL.
BACKENDS = ["sqlite"] + (["postgresql"] if pg.POSTGRES_URL else [])


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'flint.sqlite3'}"


def fresh_database(backend: str, tmp: Path, cleanups: list) -> str:
    """A FLINT_DATABASE_URL for an empty database on ``backend``; ``cleanups`` collects its removal."""
    if backend == "postgresql":
        schema, url = pg.create_schema()
        cleanups.append(lambda: pg.drop_schema(schema))
        return url
    return f"sqlite:///{tmp / 'flint.sqlite3'}"


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def db_url(backend: str, tmp_path: Path):
    cleanups: list = []
    yield fresh_database(backend, tmp_path, cleanups)
    for cleanup in cleanups:
        cleanup()


@pytest.fixture
async def rt(db_url: str):
    config = Config(database_url=db_url, secret_keys=(TEST_SECRET,), env="development", public_url="http://127.0.0.1:9",
                    payment_lease_seconds=60)
    runtime = await Runtime.start(config)
    await migrate(runtime.db)
    yield runtime
    await runtime.stop()


async def warm_pool(runtime: Runtime, connections: int = 4) -> None:
    """Open the pool's connections now, so racing transactions start together instead of one of
    them waiting for a new connection (which would serialise the race a test is about)."""
    async def hold() -> None:
        async with runtime.db.read() as conn:
            await conn.fetch_one("SELECT 1 AS one")
            await asyncio.sleep(0.02)

    await asyncio.gather(*(hold() for _ in range(connections)))


@pytest.fixture
async def second_rt(rt: Runtime):
    """Another process on the same database as ``rt``: a Runtime of its own (its own PostgreSQL
    pool, or its own SQLite connections), both pools warm."""
    second = await Runtime.start(rt.config)
    await asyncio.gather(warm_pool(rt), warm_pool(second))
    yield second
    await second.stop()


SERVER_BACKEND = os.environ.get("FLINT_TEST_BACKEND", "sqlite")


def serve_on(backend: str, tmp_path_factory: pytest.TempPathFactory):
    """A live ``flint serve`` on a fresh database of ``backend``, for a module-scoped fixture."""
    tmp = tmp_path_factory.mktemp("server")
    cleanups: list = []
    live = start_server(tmp, db_url=fresh_database(backend, tmp, cleanups))
    yield live
    stop_server(live)
    for cleanup in cleanups:
        cleanup()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    yield from serve_on(SERVER_BACKEND, tmp_path_factory)


@pytest.fixture
async def server_rt(server: LiveServer):
    """A Runtime over the live server's own database, for seeding and for looking inside."""
    runtime = await Runtime.start(server.runtime_config())
    yield runtime
    await runtime.stop()


@pytest.fixture
async def merchant(server_rt: Runtime):
    """(merchant, secret_key) on the live server."""
    return await make_merchant(server_rt)


@pytest.fixture
def advance_clock():
    """Moves this test process's clock forward (flint.clock.advance: what services in this process see
    as now), and puts it back after the test so tests stay independent. Only this fixture ever moves a
    clock back; a live server's clock moves through POST /v1/test_helpers/advance_clock."""
    before = clock.offset()
    yield clock.advance
    clock._offset = before  # noqa: SLF001 (test isolation, see the docstring)
