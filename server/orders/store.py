"""SQL for orders, including the order guard (the payment-attempt lease)."""
from __future__ import annotations

import json
from typing import Any

from flint.db import Conn
from flint.db import for_update as lock_suffix
from flint.db.pages import select_page
from flint.orders.models import Order

COLUMNS = (
    "id, merchant_id, status, currency, amount_total, amount_paid, amount_refunded, line_items, "
    "customer_email, reference, metadata, extension_data, event_seq, attempt_payment_id, "
    "attempt_expires_at, created_at, updated_at, created_by_type, created_by_id, customer, custom_fields, redacted_at"
)


async def insert_order(conn: Conn, order: Order) -> None:
    await conn.execute(
        f"""INSERT INTO orders ({COLUMNS})
            VALUES (:id, :merchant_id, :status, :currency, :amount_total, :amount_paid,
                    :amount_refunded, :line_items, :customer_email, :reference, :metadata,
                    :extension_data, :event_seq, :attempt_payment_id, :attempt_expires_at,
                    :created_at, :updated_at, :created_by_type, :created_by_id, :customer, :custom_fields,
                    :redacted_at)""",
        order.__dict__,
    )


async def select_order(conn: Conn, merchant_id: str, order_id: str, *, for_update: bool = False) -> Order | None:
    """``for_update`` locks the order, the root of everything that hangs on it (payments, sessions,
    links, refunds): a transaction that decides on any of them takes this lock first."""
    row = await conn.fetch_one(
        f"SELECT {COLUMNS} FROM orders WHERE id = :id AND merchant_id = :merchant_id"
        + (lock_suffix(conn) if for_update else ""),
        {"id": order_id, "merchant_id": merchant_id},
    )
    return Order(**row) if row else None


async def select_order_by_id(conn: Conn, order_id: str, *, for_update: bool = False,
                             skip_locked: bool = False) -> Order | None:
    """For system paths (buyer, sweeper) that already proved which merchant they act for. With
    ``skip_locked`` a sweeper gets None for an order another transaction holds (it moves on)."""
    row = await conn.fetch_one(
        f"SELECT {COLUMNS} FROM orders WHERE id = :id"
        + (lock_suffix(conn, skip_locked=skip_locked) if for_update else ""),
        {"id": order_id},
    )
    return Order(**row) if row else None


async def select_orders_page(
    conn: Conn, merchant_id: str, limit: int, starting_after: str | None
) -> tuple[list[Order], bool]:
    rows, has_more = await select_page(
        conn, table="orders", columns=COLUMNS, where="merchant_id = :merchant_id",
        params={"merchant_id": merchant_id}, limit=limit, starting_after=starting_after,
    )
    return [Order(**r) for r in rows], has_more


async def update_order_status(conn: Conn, order_id: str, *, from_status: str, to_status: str, at: str) -> int:
    return await conn.execute(
        """UPDATE orders SET status = :to_status, updated_at = :at
           WHERE id = :id AND status = :from_status AND attempt_payment_id IS NULL""",
        {"id": order_id, "from_status": from_status, "to_status": to_status, "at": at},
    )


async def take_attempt_lease(conn: Conn, order_id: str, payment_id: str, expires_at: str, now: str) -> int:
    """The order guard: only one attempt can hold an open order; a lapsed lease can be taken."""
    return await conn.execute(
        """UPDATE orders SET attempt_payment_id = :payment_id, attempt_expires_at = :expires_at,
                             updated_at = :now
           WHERE id = :id AND status = 'open'
             AND (attempt_payment_id IS NULL OR attempt_expires_at <= :now)""",
        {"id": order_id, "payment_id": payment_id, "expires_at": expires_at, "now": now},
    )


async def extend_attempt_lease(conn: Conn, order_id: str, payment_id: str, expires_at: str, now: str) -> int:
    return await conn.execute(
        """UPDATE orders SET attempt_expires_at = :expires_at, updated_at = :now
           WHERE id = :id AND attempt_payment_id = :payment_id""",
        {"id": order_id, "payment_id": payment_id, "expires_at": expires_at, "now": now},
    )


async def release_attempt_lease(conn: Conn, order_id: str, payment_id: str, now: str) -> int:
    return await conn.execute(
        """UPDATE orders SET attempt_payment_id = NULL, attempt_expires_at = NULL, updated_at = :now
           WHERE id = :id AND attempt_payment_id = :payment_id""",
        {"id": order_id, "payment_id": payment_id, "now": now},
    )


async def mark_order_paid(conn: Conn, order_id: str, payment_id: str, amount: int, now: str) -> int:
    """Only the attempt that still holds the guard may mark the order paid."""
    return await conn.execute(
        """UPDATE orders SET status = 'paid', amount_paid = :amount, attempt_payment_id = NULL,
                             attempt_expires_at = NULL, updated_at = :now
           WHERE id = :id AND status = 'open' AND attempt_payment_id = :payment_id""",
        {"id": order_id, "payment_id": payment_id, "amount": amount, "now": now},
    )


async def mark_order_authorized(conn: Conn, order_id: str, payment_id: str, now: str) -> int:
    """Only the attempt that still holds the guard may put the order's money on hold (manual capture)."""
    return await conn.execute(
        """UPDATE orders SET status = 'authorized', attempt_payment_id = NULL, attempt_expires_at = NULL,
                             updated_at = :now
           WHERE id = :id AND status = 'open' AND attempt_payment_id = :payment_id""",
        {"id": order_id, "payment_id": payment_id, "now": now},
    )


async def mark_authorized_order_paid(conn: Conn, order_id: str, amount: int, now: str) -> int:
    """authorized -> paid for what was captured (at most the authorized amount)."""
    return await conn.execute(
        """UPDATE orders SET status = 'paid', amount_paid = :amount, updated_at = :now
           WHERE id = :id AND status = 'authorized'""",
        {"id": order_id, "amount": amount, "now": now},
    )


async def add_order_refund(conn: Conn, order_id: str, amount: int, now: str) -> None:
    await conn.execute(
        """UPDATE orders SET amount_refunded = amount_refunded + :amount,
                  status = CASE WHEN amount_refunded + :amount >= amount_paid THEN 'refunded'
                                ELSE 'partially_refunded' END,
                  updated_at = :now
           WHERE id = :id""",
        {"id": order_id, "amount": amount, "now": now},
    )


async def select_lapsed_attempts(conn: Conn, now: str, limit: int = 100) -> list[dict[str, Any]]:
    return await conn.fetch_all(
        """SELECT id, merchant_id, attempt_payment_id FROM orders
           WHERE attempt_payment_id IS NOT NULL AND attempt_expires_at <= :now LIMIT :limit""",
        {"now": now, "limit": limit},
    )


async def select_orders_by_ids(conn: Conn, ids: list[str], *, for_update: bool = False,
                               skip_locked: bool = False) -> dict[str, Order]:
    """``for_update`` locks them in id order; with ``skip_locked`` the ones another transaction
    holds are left out (a sweeper takes the rest, concurrent sweepers take disjoint sets)."""
    if not ids:
        return {}
    binds = {f"o{i}": value for i, value in enumerate(ids)}
    rows = await conn.fetch_all(
        f"SELECT {COLUMNS} FROM orders WHERE id IN ({', '.join(':' + k for k in binds)}) ORDER BY id"
        + (lock_suffix(conn, skip_locked=skip_locked) if for_update else ""), binds)
    return {row["id"]: Order(**row) for row in rows}


async def merge_extension_data(conn: Conn, order_id: str, annotations: dict[str, Any], at: str,
                               *, fields: dict[str, dict[str, Any]] | None = None) -> None:
    """Merges apps' annotations into the order's extension_data (each under its app's id), and the
    values the buyer gave an app's checkout fields under ``extension_data[app_id].fields``. An
    annotation replaces the app's data but not its fields: those are the buyer's, set by Flint alone.
    The order is locked for the read-merge-write (PostgreSQL): two payment attempts' hooks annotating it
    at once both land."""
    row = await conn.fetch_one("SELECT extension_data FROM orders WHERE id = :id" + lock_suffix(conn),
                               {"id": order_id})
    data = json.loads(row["extension_data"]) if row else {}
    for app_id, value in annotations.items():
        kept = data.get(app_id, {}).get("fields") if isinstance(data.get(app_id), dict) else None
        data[app_id] = {**value, "fields": kept} if kept is not None and isinstance(value, dict) else value
    for app_id, values in (fields or {}).items():
        current = data.get(app_id) if isinstance(data.get(app_id), dict) else {}
        data[app_id] = {**current, "fields": values}
    await conn.execute("UPDATE orders SET extension_data = :data, updated_at = :at WHERE id = :id",
                       {"id": order_id, "data": json.dumps(data, sort_keys=True), "at": at})


async def record_buyer_details(conn: Conn, order_id: str, *, customer: dict[str, Any] | None,
                               custom_fields: dict[str, Any], at: str) -> None:
    """What the buyer gave at checkout (docs/api.md 14); an email given also becomes the order's
    customer_email. Inside the attempt's transaction, under the order's lock."""
    email = (customer or {}).get("email")
    await conn.execute(
        """UPDATE orders SET customer = :customer, custom_fields = :custom_fields,
                  customer_email = COALESCE(:email, customer_email), updated_at = :at WHERE id = :id""",
        {"id": order_id, "customer": json.dumps(customer, sort_keys=True) if customer else None,
         "custom_fields": json.dumps(custom_fields, sort_keys=True), "email": email, "at": at})


async def reserve_event_sequences(conn: Conn, order_id: str, count: int) -> int:
    """Hand out the order's next ``count`` event sequence numbers; returns the last one. The UPDATE also
    locks the order row, which every writer of an order's payments, sessions and links takes first."""
    row = await conn.fetch_one(
        "UPDATE orders SET event_seq = event_seq + :count WHERE id = :id RETURNING event_seq",
        {"id": order_id, "count": count},
    )
    assert row is not None, f"order {order_id} vanished inside its own transaction"
    return int(row["event_seq"])


async def erase_buyer_details(conn: Conn, order_id: str, *, extension_data: str, at: str) -> None:
    """The right to erasure (docs/api.md 14): the buyer's details, the email and the custom fields'
    values go; ``extension_data`` comes back without the apps' ``fields`` (the caller strips them,
    keeping the apps' annotations). Amounts, statuses, reference and metadata (the merchant's) stay.
    Under the order's lock."""
    await conn.execute(
        """UPDATE orders SET customer = NULL, custom_fields = '{}', customer_email = NULL,
                  extension_data = :extension_data, redacted_at = :at, updated_at = :at WHERE id = :id""",
        {"id": order_id, "extension_data": extension_data, "at": at})


async def search_orders_page(conn: Conn, merchant_id: str, *, limit: int, status: str | None = None,
                             query: str | None = None, starting_after: str | None = None,
                             ending_before: str | None = None) -> tuple[list[Order], bool]:
    """The console's order list (docs/api.md 15): newest first, keyset-paginated both ways, never OFFSET.
    ``status`` filters; ``query`` matches an order id or reference exactly, or the buyer's email exactly
    but case-insensitively (each through an index: migration 0016). ``starting_after`` pages to older
    orders, ``ending_before`` to newer ones; an unknown cursor (or another merchant's) reads the first page.
    Returns the page (newest first) and whether more rows lie beyond it in the direction of travel."""
    params: dict[str, Any] = {"merchant_id": merchant_id, "limit": limit + 1}
    if query:
        # One indexed lookup per kind of match, united, and the page read by primary key from those: with
        # an OR (or the merchant's id out here too) the planners walk all the merchant's orders by date.
        where = """id IN (SELECT id FROM orders WHERE id = :query AND merchant_id = :merchant_id
                          UNION SELECT id FROM orders WHERE merchant_id = :merchant_id AND reference = :query
                          UNION SELECT id FROM orders WHERE merchant_id = :merchant_id
                                                        AND lower(customer_email) = lower(:query))"""
        params["query"] = query
    else:
        where = "merchant_id = :merchant_id"
    if status is not None:
        where += " AND status = :status"
        params["status"] = status
    cursor_id = ending_before or starting_after
    backwards = ending_before is not None
    if cursor_id is not None:
        cursor = await conn.fetch_one(
            "SELECT created_at, id FROM orders WHERE id = :cursor_id AND merchant_id = :merchant_id",
            {"cursor_id": cursor_id, "merchant_id": merchant_id})
        if cursor is None:
            backwards = False
        else:
            way = ">" if backwards else "<"
            # A row value bounds the index scan on PostgreSQL (see flint.db.pages).
            where += f" AND (created_at, id) {way} (:c_at, :c_id)"
            params.update(c_at=cursor["created_at"], c_id=cursor["id"])
    order = "ASC" if backwards else "DESC"
    rows = await conn.fetch_all(
        f"SELECT {COLUMNS} FROM orders WHERE {where} ORDER BY created_at {order}, id {order} LIMIT :limit", params)
    page = [Order(**row) for row in rows[:limit]]
    if backwards:
        page.reverse()
    return page, len(rows) > limit
