"""SQL for Idempotency-Key records."""
from __future__ import annotations

from flint.db import Conn
from flint.db import for_update as lock_suffix
from flint.idempotency.models import IdempotencyKey

COLUMNS = "scope, idem_key, request_hash, state, locked_until, response_status, response_type, response_body, created_at"


async def insert_key(conn: Conn, scope: str, key: str, request_hash: str, locked_until: str, now: str) -> int:
    return await conn.execute(
        """INSERT INTO idempotency_keys (scope, idem_key, request_hash, state, locked_until, created_at)
           VALUES (:scope, :key, :hash, 'running', :locked_until, :now)
           ON CONFLICT (scope, idem_key) DO NOTHING""",
        {"scope": scope, "key": key, "hash": request_hash, "locked_until": locked_until, "now": now},
    )


async def select_key(conn: Conn, scope: str, key: str, *, for_update: bool = False) -> IdempotencyKey | None:
    """``for_update`` locks the record (PostgreSQL) for a decision on it: replay, take over, restart."""
    row = await conn.fetch_one(
        f"SELECT {COLUMNS} FROM idempotency_keys WHERE scope = :scope AND idem_key = :key"
        + (lock_suffix(conn) if for_update else ""),
        {"scope": scope, "key": key},
    )
    return IdempotencyKey(**row) if row else None


async def relock_key(conn: Conn, scope: str, key: str, locked_until: str, now: str) -> int:
    """Take over a key whose first request died mid-way (its lock lapsed)."""
    return await conn.execute(
        """UPDATE idempotency_keys SET locked_until = :locked_until
           WHERE scope = :scope AND idem_key = :key AND state = 'running' AND locked_until <= :now""",
        {"scope": scope, "key": key, "locked_until": locked_until, "now": now},
    )


async def restart_key(conn: Conn, scope: str, key: str, request_hash: str, locked_until: str, now: str,
                      expired_before: str) -> int:
    """A record past its time to live, not yet purged, starts afresh for a new request: one UPDATE
    of the row (not DELETE then INSERT, which a second process could interleave with its own)."""
    return await conn.execute(
        """UPDATE idempotency_keys SET request_hash = :hash, state = 'running', locked_until = :locked_until,
                  response_status = NULL, response_type = NULL, response_body = NULL, created_at = :now
           WHERE scope = :scope AND idem_key = :key AND created_at < :expired_before""",
        {"scope": scope, "key": key, "hash": request_hash, "locked_until": locked_until, "now": now,
         "expired_before": expired_before},
    )


async def complete_key(conn: Conn, scope: str, key: str, status: int, content_type: str, body: str) -> None:
    await conn.execute(
        """UPDATE idempotency_keys SET state = 'done', locked_until = NULL, response_status = :status,
                  response_type = :content_type, response_body = :body
           WHERE scope = :scope AND idem_key = :key""",
        {"scope": scope, "key": key, "status": status, "content_type": content_type, "body": body},
    )


async def delete_key(conn: Conn, scope: str, key: str) -> None:
    await conn.execute("DELETE FROM idempotency_keys WHERE scope = :scope AND idem_key = :key",
                       {"scope": scope, "key": key})


async def delete_older_than(conn: Conn, before: str) -> int:
    return await conn.execute("DELETE FROM idempotency_keys WHERE created_at < :before", {"before": before})
