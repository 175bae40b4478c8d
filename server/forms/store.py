"""SQL for one-time form tokens."""
from __future__ import annotations

from flint.db import Conn


async def consume_nonce(conn: Conn, nonce: str, session_id: str, now: str) -> int:
    """1 if this nonce was fresh (and is now spent), 0 if it was used before."""
    return await conn.execute(
        """INSERT INTO form_nonces (nonce, session_id, used_at) VALUES (:nonce, :session_id, :now)
           ON CONFLICT (nonce) DO NOTHING""",
        {"nonce": nonce, "session_id": session_id, "now": now},
    )


async def select_nonce(conn: Conn, nonce: str) -> dict | None:
    return await conn.fetch_one("SELECT nonce, session_id, used_at, outcome_url FROM form_nonces WHERE nonce = :n",
                                {"n": nonce})


async def record_outcome(conn: Conn, nonce: str, url: str) -> None:
    await conn.execute("UPDATE form_nonces SET outcome_url = :url WHERE nonce = :n", {"n": nonce, "url": url})


async def delete_older_than(conn: Conn, before: str) -> int:
    return await conn.execute("DELETE FROM form_nonces WHERE used_at < :before", {"before": before})
