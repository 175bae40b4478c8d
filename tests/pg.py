"""Throwaway PostgreSQL schemas for tests: each test (or live server) gets a schema of its own in
the database named by ``FLINT_TEST_POSTGRES_URL``, selected through ``search_path`` in the URL,
so tests never see each other's rows and a parallel CI run on the same server is not disturbed."""
from __future__ import annotations

import asyncio
import itertools
import os
import threading
from urllib.parse import urlencode, urlsplit, urlunsplit, parse_qsl

POSTGRES_URL = os.environ.get("FLINT_TEST_POSTGRES_URL", "")
_counter = itertools.count()


def run_in_thread(coro_factory):
    """Run a coroutine to completion on a fresh loop in a thread: callers may be inside a loop."""
    result: list = []
    errors: list[BaseException] = []

    def target() -> None:
        try:
            result.append(asyncio.run(coro_factory()))
        except BaseException as error:  # re-raised in the caller's thread
            errors.append(error)

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if errors:
        raise errors[0]
    return result[0] if result else None


def _admin(sql: str) -> None:
    import asyncpg

    async def go() -> None:
        conn = await asyncpg.connect(POSTGRES_URL)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    run_in_thread(go)


def with_search_path(url: str, schema: str) -> str:
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query), search_path=schema)
    return urlunsplit(parts._replace(query=urlencode(query)))


def create_schema() -> tuple[str, str]:
    """A new empty schema; returns (its name, a FLINT_DATABASE_URL that uses it)."""
    assert POSTGRES_URL, "FLINT_TEST_POSTGRES_URL is not set"
    schema = f"flint_t{os.getpid()}_{next(_counter)}"
    _admin(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE; CREATE SCHEMA "{schema}"')
    return schema, with_search_path(POSTGRES_URL, schema)


def drop_schema(schema: str) -> None:
    _admin(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


async def table_names(conn) -> list[str]:
    """Every table of the database behind ``conn`` (a Flint Conn), on either backend."""
    sql = ("SELECT name FROM sqlite_master WHERE type = 'table'" if conn.dialect == "sqlite" else
           "SELECT table_name AS name FROM information_schema.tables WHERE table_schema = current_schema()")
    return [row["name"] for row in await conn.fetch_all(sql)]
