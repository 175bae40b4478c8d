"""Fixtures: a fresh migrated database per test (``rt``), and a real ``flint serve`` process
on a free loopback port (``server``) with its own SQLite file, logs captured to a file."""
from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from flint.config import Config
from flint.db.migrate import migrate
from flint.runtime import Runtime

from . import pg
from .factories import make_merchant

ROOT = Path(__file__).resolve().parent.parent
TEST_SECRET = "test-secret-key-for-flint-tests-only"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


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


@dataclass
class LiveServer:
    url: str
    db_url: str
    log_path: Path
    env: dict[str, str]
    process: subprocess.Popen = field(repr=False)

    def client(self, token: str | None = None, **kwargs) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30, **kwargs)

    def async_client(self, token: str | None = None, **kwargs) -> httpx.AsyncClient:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        limits = httpx.Limits(max_connections=100)
        return httpx.AsyncClient(base_url=self.url, headers=headers, timeout=30, limits=limits, **kwargs)

    def logs(self) -> str:
        return self.log_path.read_text()

    def runtime_config(self) -> Config:
        return Config(database_url=self.db_url, secret_keys=(TEST_SECRET,), env="development", public_url=self.url)


def start_server(tmp: Path, extra_env: dict[str, str] | None = None, db_url: str | None = None,
                 args: tuple[str, ...] = (), ready_path: str = "/healthz") -> LiveServer:
    """``flint serve`` (plus ``args``) on a free loopback port, once ``ready_path`` answers 200."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    db_url = db_url or f"sqlite:///{tmp / 'flint.sqlite3'}"
    env = dict(os.environ, FLINT_DATABASE_URL=db_url, FLINT_SECRET_KEY=TEST_SECRET, FLINT_PUBLIC_URL=url,
               FLINT_ENV="development", FLINT_SWEEP_INTERVAL="0.5", FLINT_LOG_LEVEL="INFO")
    # Every test buyer comes from 127.0.0.1: the per-address attempt limit (API.md 13) would soon refuse
    # ordinary tests. Its own tests lower it again through the environment or extra_env.
    env.setdefault("FLINT_ATTEMPTS_PER_ADDRESS", os.environ.get("FLINT_ATTEMPTS_PER_ADDRESS", "100000"))
    env.update(extra_env or {})
    log_path = tmp / f"server-{port}.log"
    log = open(log_path, "wb")
    process = subprocess.Popen([sys.executable, "-m", "flint.cli", "serve", "--host", "127.0.0.1", "--port", str(port),
                                *args],
                               cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    log.close()
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(f"{url}{ready_path}", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(f"flint serve did not start:\n{log_path.read_text()[-3000:]}")
        time.sleep(0.1)
    return LiveServer(url=url, db_url=db_url, log_path=log_path, env=env, process=process)


def stop_server(server: LiveServer) -> None:
    server.process.terminate()
    try:
        server.process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait()


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
