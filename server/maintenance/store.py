"""SQL for re-encrypting sealed columns. Every column ``SecretBox.seal`` writes is listed here."""
from __future__ import annotations

from typing import Any

from flint.db import Conn

# (table, key columns, sealed column): webhook signing secrets, app webhook secrets, and stored
# idempotent responses (they can hold a secret shown once).
SEALED_COLUMNS: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ("webhook_endpoints", ("id",), "secret"),
    ("webhook_endpoints", ("id",), "previous_secret"),
    ("apps", ("id",), "webhook_secret"),
    ("apps", ("id",), "previous_webhook_secret"),
    ("idempotency_keys", ("scope", "idem_key"), "response_body"),
)


async def select_sealed(conn: Conn, table: str, keys: tuple[str, ...], column: str,
                        after: tuple[str, ...] | None, limit: int) -> list[dict[str, Any]]:
    """The next page of (key..., value) in key order; row-value comparison pages on a composite key."""
    names = ", ".join(keys)
    binds = {f"a{i}": value for i, value in enumerate(after or ())}
    page = f"({names}) > ({', '.join(':' + b for b in binds)}) AND " if after else ""
    return await conn.fetch_all(
        f"""SELECT {names}, {column} AS sealed FROM {table}
            WHERE {page}{column} IS NOT NULL ORDER BY {names} LIMIT :limit""",
        dict(binds, limit=limit),
    )


async def replace_sealed(conn: Conn, table: str, keys: tuple[str, ...], column: str,
                         row: dict[str, Any], new: str) -> int:
    # Conditional: a value rewritten meanwhile (a secret rotated by its owner) is left as it now is.
    match = " AND ".join(f"{key} = :k_{key}" for key in keys)
    return await conn.execute(
        f"UPDATE {table} SET {column} = :new WHERE {match} AND {column} = :old",
        dict({f"k_{key}": row[key] for key in keys}, new=new, old=row["sealed"]),
    )
