"""Re-encrypt every sealed secret under the newest FLINT_SECRET_KEY.

Rotation: put the new key first in FLINT_SECRET_KEY on every process (the old one stays, so
everything sealed or signed before still opens), run ``flint reseal-secrets``, and once signed
tokens made under the old key have expired (a checkout session's client token lives at most 24
hours) the old key can leave the list. Safe to run while Flint serves: rows are rewritten in small
transactions and only if unchanged since they were read.
"""
from __future__ import annotations

from flint.maintenance import store
from flint.runtime import Runtime

BATCH = 200


async def reseal_all(rt: Runtime) -> dict[str, dict[str, int]]:
    """Returns per column: rows resealed, and rows that no key in the list opens (left as they are)."""
    report: dict[str, dict[str, int]] = {}
    for table, keys, column in store.SEALED_COLUMNS:
        counts = {"resealed": 0, "unreadable": 0}
        after: tuple[str, ...] | None = None
        while True:
            async with rt.db.read() as conn:
                rows = await store.select_sealed(conn, table, keys, column, after, BATCH)
            if not rows:
                break
            after = tuple(rows[-1][key] for key in keys)
            async with rt.db.transaction() as conn:
                for row in rows:
                    new = rt.secrets.reseal(row["sealed"])
                    if new is None:
                        counts["unreadable"] += 1
                    else:
                        counts["resealed"] += await store.replace_sealed(conn, table, keys, column, row, new)
        report[f"{table}.{column}"] = counts
    return report
