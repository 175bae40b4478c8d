"""SQL for payment links."""
from __future__ import annotations

from flint.db import Conn
from flint.db.pages import select_page
from flint.links.models import PaymentLink

COLUMNS = ("id, merchant_id, order_id, source, checkout_session_id, active, expires_at, deactivated_at, "
           "created_at, updated_at, created_by_type, created_by_id")


async def insert_link(conn: Conn, link: PaymentLink) -> None:
    await conn.execute(
        f"""INSERT INTO payment_links ({COLUMNS})
            VALUES (:id, :merchant_id, :order_id, :source, :checkout_session_id, :active, :expires_at,
                    :deactivated_at, :created_at, :updated_at, :created_by_type, :created_by_id)""",
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
