"""`/readyz`: what a load balancer asks each Flint process before sending it traffic."""
from __future__ import annotations

from flint.runtime import Runtime
from support.server import start_server, stop_server
from tests.conftest import fresh_database


async def test_readyz_reports_the_database_and_fails_cleanly_without_it(backend, tmp_path):
    cleanups: list = []
    live = start_server(tmp_path, db_url=fresh_database(backend, tmp_path, cleanups))
    runtime = await Runtime.start(live.runtime_config())
    try:
        async with live.async_client() as client:
            ready = await client.get("/readyz")
            assert ready.status_code == 200 and ready.json() == {"status": "ok", "database": backend}
            # The schema goes away under the process (a restore gone wrong, a wrong search_path).
            async with runtime.db.transaction() as conn:
                await conn.execute("DROP TABLE schema_migrations")
            broken = await client.get("/readyz")
            assert broken.status_code == 503 and broken.headers["retry-after"] == "5"
            assert broken.headers["content-type"] == "application/problem+json"
            assert broken.json()["code"] == "database_unavailable"
            assert "Traceback" not in broken.text and "schema_migrations" not in broken.text
            assert (await client.get("/healthz")).status_code == 200  # alive, just not ready
    finally:
        await runtime.stop()
        stop_server(live)
        for cleanup in cleanups:
            cleanup()
