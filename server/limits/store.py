"""SQL for the per-address attempt count (tables client_addresses and address_attempts)."""
from __future__ import annotations

from flint.db import Conn


async def lock_address(conn: Conn, address: str, at: str) -> None:
    """Inside ``transaction()``: take the address's row lock (creating the row if needed), so that
    attempts from one address count and insert one at a time across processes. (An upsert locks on
    PostgreSQL until COMMIT; SQLite's BEGIN IMMEDIATE already holds the whole database.)"""
    await conn.execute(
        """INSERT INTO client_addresses (address, last_attempt_at) VALUES (:address, :at)
           ON CONFLICT (address) DO UPDATE SET last_attempt_at = excluded.last_attempt_at""",
        {"address": address, "at": at})


async def insert_attempt_within(conn: Conn, *, id: str, address: str, at: str, since: str, limit: int) -> bool:
    """Record an attempt only if the address made fewer than ``limit`` since ``since``: one
    statement, after ``lock_address`` (so the count cannot change under it). True if recorded."""
    return await conn.execute(
        """INSERT INTO address_attempts (id, address, attempted_at)
           SELECT :id, :address, :at
           WHERE (SELECT COUNT(*) FROM address_attempts WHERE address = :address AND attempted_at > :since) < :limit""",
        {"id": id, "address": address, "at": at, "since": since, "limit": limit}) == 1


async def count_attempts(conn: Conn, address: str, since: str) -> int:
    row = await conn.fetch_one(
        "SELECT COUNT(*) AS n FROM address_attempts WHERE address = :address AND attempted_at > :since",
        {"address": address, "since": since})
    return int(row["n"]) if row else 0


async def select_attempt_time(conn: Conn, address: str, since: str, offset: int) -> str | None:
    """When the address's (offset + 1)-th oldest attempt since ``since`` was made."""
    row = await conn.fetch_one(
        """SELECT attempted_at FROM address_attempts WHERE address = :address AND attempted_at > :since
           ORDER BY attempted_at LIMIT 1 OFFSET :offset""",
        {"address": address, "since": since, "offset": offset})
    return row["attempted_at"] if row else None


async def delete_attempt(conn: Conn, attempt_id: str) -> None:
    await conn.execute("DELETE FROM address_attempts WHERE id = :id", {"id": attempt_id})


async def purge(conn: Conn, before: str) -> int:
    done = await conn.execute("DELETE FROM address_attempts WHERE attempted_at < :before", {"before": before})
    await conn.execute("DELETE FROM client_addresses WHERE last_attempt_at < :before", {"before": before})
    return done
