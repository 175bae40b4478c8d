"""Health for load balancers and the benchmarks: liveness and readiness, outside /v1."""
from __future__ import annotations

import logging

from quart import Blueprint

from flint.errors import FlintError
from flint.http.auth import public
from flint.http.context import runtime

log = logging.getLogger("flint.http")
bp = Blueprint("health", __name__)


@bp.get("/healthz")
@public
async def get_healthz():
    """Liveness: the process answers (the benchmarks' baseline, so it touches nothing)."""
    return {"status": "ok"}


@bp.get("/readyz")
@public
async def get_readyz():
    """Readiness for a load balancer: this process reaches the database and its schema."""
    rt = runtime()
    try:
        async with rt.db.read() as conn:
            await conn.fetch_one("SELECT MAX(version) AS version FROM schema_migrations")
    except Exception:
        log.warning("readiness check failed: the database is unreachable", exc_info=True)
        raise FlintError(503, "database_unavailable", "This process cannot reach its database.",
                         headers={"Retry-After": "5"})
    return {"status": "ok", "database": rt.db.dialect}
