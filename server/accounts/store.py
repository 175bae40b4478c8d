"""SQL for web sessions and failed sign-ins."""
from __future__ import annotations

from flint.accounts.models import WebSession
from flint.db import Conn


async def insert_session(conn: Conn, *, id: str, merchant_id: str, staff_id: str, token_hash: str,
                         created_at: str, expires_at: str) -> None:
    await conn.execute(
        """INSERT INTO web_sessions (id, merchant_id, staff_id, token_hash, created_at, expires_at, revoked_at)
           VALUES (:id, :merchant_id, :staff_id, :token_hash, :created_at, :expires_at, NULL)""",
        {"id": id, "merchant_id": merchant_id, "staff_id": staff_id, "token_hash": token_hash,
         "created_at": created_at, "expires_at": expires_at},
    )


async def select_live_session(conn: Conn, token_hash: str, now: str) -> WebSession | None:
    row = await conn.fetch_one(
        """SELECT id, merchant_id, staff_id FROM web_sessions
           WHERE token_hash = :token_hash AND revoked_at IS NULL AND expires_at > :now""",
        {"token_hash": token_hash, "now": now},
    )
    return WebSession(**row) if row else None


async def revoke_session(conn: Conn, session_id: str, at: str) -> None:
    await conn.execute("UPDATE web_sessions SET revoked_at = :at WHERE id = :id AND revoked_at IS NULL",
                       {"id": session_id, "at": at})


async def count_failures(conn: Conn, key: str, since: str) -> int:
    row = await conn.fetch_one("SELECT COUNT(*) AS n FROM login_failures WHERE key = :key AND failed_at > :since",
                               {"key": key, "since": since})
    return int(row["n"]) if row else 0


async def insert_failure(conn: Conn, *, id: str, key: str, at: str) -> None:
    await conn.execute("INSERT INTO login_failures (id, key, failed_at) VALUES (:id, :key, :at)",
                       {"id": id, "key": key, "at": at})


async def delete_failures(conn: Conn, ids: list[str]) -> None:
    binds = {f"id{i}": value for i, value in enumerate(ids)}
    await conn.execute(f"DELETE FROM login_failures WHERE id IN ({', '.join(':' + k for k in binds)})", binds)


async def clear_failures(conn: Conn, key: str) -> None:
    await conn.execute("DELETE FROM login_failures WHERE key = :key", {"key": key})


async def purge(conn: Conn, before: str) -> int:
    done = await conn.execute("DELETE FROM login_failures WHERE failed_at < :before", {"before": before})
    return done + await conn.execute("DELETE FROM web_sessions WHERE expires_at < :before", {"before": before})
