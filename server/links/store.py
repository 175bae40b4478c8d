"""SQL for payment links."""
from __future__ import annotations

from flint.db import Conn
from flint.db.pages import select_page
from flint.links.models import PaymentLink

COLUMNS = ("id, merchant_id, order_id, source, checkout_session_id, active, expires_at, deactivated_at, "
           "created_at, updated_at, created_by_type, created_by_id, collect, custom_fields, capture")


async def insert_link(conn: Conn, link: PaymentLink) -> None:
    await conn.execute(
        f"""INSERT INTO payment_links ({COLUMNS})
            VALUES (:id, :merchant_id, :order_id, :source, :checkout_session_id, :active, :expires_at,
                    :deactivated_at, :created_at, :updated_at, :created_by_type, :created_by_id, :collect,
                    :custom_fields, :capture)""",
        link.__dict__,
    )


async def select_link(conn: Conn, merchant_id: str, link_id: str) -> PaymentLink | None:
    row = await conn.fetch_one(f"SELECT {COLUMNS} FROM payment_links WHERE id = :id AND merchant_id = :merchant_id",
                               {"id": link_id, "merchant_id": merchant_id})
    return PaymentLink(**row) if row else None


async def select_link_by_id(conn: Conn, link_id: str) -> PaymentLink | None:
    row = await conn.fetch_one(f"SELECT {COLUMNS} FROM payment_links WHERE id = :id", {"id": link_id})
    return PaymentLink(**row) if row else None


async def select_links_page(conn: Conn, merchant_id: str, order_id: str | None, limit: int, starting_after: str | None):
    where, params = "merchant_id = :merchant_id", {"merchant_id": merchant_id}
    if order_id is not None:
        where += " AND order_id = :order_id"
        params["order_id"] = order_id
    rows, has_more = await select_page(conn, table="payment_links", columns=COLUMNS, where=where, params=params,
                                       limit=limit, starting_after=starting_after)
    return [PaymentLink(**r) for r in rows], has_more


async def deactivate(conn: Conn, link_id: str, at: str) -> PaymentLink | None:
    row = await conn.fetch_one(
        f"""UPDATE payment_links SET active = 0, deactivated_at = :at, updated_at = :at
            WHERE id = :id AND active = 1 RETURNING {COLUMNS}""",
        {"id": link_id, "at": at},
    )
    return PaymentLink(**row) if row else None


# -- the recovery funnel (links/summary.py): reads over sessions, links and their payments ----------------

async def select_drop_offs_by_reason(conn: Conn, merchant_id: str, since: str, until: str) -> list[dict]:
    """Drop-offs in the range by reason (left | idle | expired), and how many of those sessions were paid
    after all in the session itself."""
    return await conn.fetch_all(
        """SELECT s.drop_off_reason AS reason, COUNT(*) AS n,
                  SUM(CASE WHEN EXISTS (SELECT 1 FROM payments p WHERE p.checkout_session_id = s.id
                                        AND p.status = 'succeeded') THEN 1 ELSE 0 END) AS completed
           FROM checkout_sessions s
           WHERE s.merchant_id = :m AND s.dropped_off_at >= :since AND s.dropped_off_at < :until
           GROUP BY s.drop_off_reason""", {"m": merchant_id, "since": since, "until": until})


async def count_recovery_links(conn: Conn, merchant_id: str, since: str, until: str) -> int:
    row = await conn.fetch_one(
        """SELECT COUNT(*) AS n FROM payment_links
           WHERE merchant_id = :m AND source = 'recovery' AND created_at >= :since AND created_at < :until""",
        {"m": merchant_id, "since": since, "until": until})
    return int(row["n"]) if row else 0


async def select_paid_recovery_links(conn: Conn, merchant_id: str, since: str, until: str) -> list[dict]:
    """Recovery links made in the range that were paid: when each was made, when paid, and how much."""
    return await conn.fetch_all(
        """SELECT l.created_at AS link_at, p.updated_at AS paid_at, p.amount, p.currency
           FROM payment_links l JOIN payments p ON p.payment_link_id = l.id AND p.status = 'succeeded'
           WHERE l.merchant_id = :m AND l.source = 'recovery' AND l.created_at >= :since AND l.created_at < :until""",
        {"m": merchant_id, "since": since, "until": until})
