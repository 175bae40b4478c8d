"""SQL for refunds."""
from __future__ import annotations

from flint.db import Conn
from flint.db import for_update as lock_suffix
from flint.db.pages import select_page
from flint.refunds.models import Refund

COLUMNS = (
    "id, merchant_id, payment_id, order_id, amount, currency, status, reason, failure_code, "
    "processor_ref, created_at, updated_at, created_by_type, created_by_id"
)


async def insert_refund(conn: Conn, refund: Refund) -> None:
    await conn.execute(
        f"""INSERT INTO refunds ({COLUMNS})
            VALUES (:id, :merchant_id, :payment_id, :order_id, :amount, :currency, :status, :reason,
                    :failure_code, :processor_ref, :created_at, :updated_at, :created_by_type, :created_by_id)""",
        refund.__dict__,
    )


async def select_refund(conn: Conn, merchant_id: str, refund_id: str) -> Refund | None:
    row = await conn.fetch_one(
        f"SELECT {COLUMNS} FROM refunds WHERE id = :id AND merchant_id = :merchant_id",
        {"id": refund_id, "merchant_id": merchant_id},
    )
    return Refund(**row) if row else None


async def select_refunds_page(conn: Conn, merchant_id: str, limit: int, starting_after: str | None):
    rows, has_more = await select_page(
        conn, table="refunds", columns=COLUMNS, where="merchant_id = :merchant_id",
        params={"merchant_id": merchant_id}, limit=limit, starting_after=starting_after)
    return [Refund(**r) for r in rows], has_more


async def claim_stale_pending(conn: Conn, before: str, now: str, limit: int) -> list[Refund]:
    """Inside a transaction: pending refunds untouched since ``before``, locked (skipping those another
    sweeper is claiming) and touched (``updated_at = now``), so no other sweeper lists them again
    until they go stale anew."""
    rows = await conn.fetch_all(
        f"""SELECT {COLUMNS} FROM refunds WHERE status = 'pending' AND updated_at <= :before
            ORDER BY updated_at LIMIT :limit""" + lock_suffix(conn, skip_locked=True),
        {"before": before, "limit": limit},
    )
    if not rows:
        return []
    binds = {f"r{i}": row["id"] for i, row in enumerate(rows)}
    await conn.execute(
        f"UPDATE refunds SET updated_at = :now WHERE id IN ({', '.join(':' + k for k in binds)})",
        {**binds, "now": now})
    return [Refund(**{**r, "updated_at": now}) for r in rows]


async def finish_refund(conn: Conn, refund_id: str, *, status: str, processor_ref: str | None,
                        failure_code: str | None, now: str) -> int:
    return await conn.execute(
        """UPDATE refunds SET status = :status, processor_ref = :processor_ref,
                  failure_code = :failure_code, updated_at = :now
           WHERE id = :id AND status = 'pending'""",
        {"id": refund_id, "status": status, "processor_ref": processor_ref,
         "failure_code": failure_code, "now": now},
    )


async def count_refunds_by_day(conn: Conn, merchant_id: str, since: str, until: str) -> list[dict]:
    """The console's Overview: succeeded refunds per UTC day (the first ten characters of created_at) and
    currency, how many and how much; the range is read through refunds_merchant_created."""
    return await conn.fetch_all(
        """SELECT substr(created_at, 1, 10) AS day, currency, COUNT(*) AS n, SUM(amount) AS amount
           FROM refunds
           WHERE merchant_id = :m AND created_at >= :since AND created_at < :until AND status = 'succeeded'
           GROUP BY substr(created_at, 1, 10), currency""",
        {"m": merchant_id, "since": since, "until": until})
