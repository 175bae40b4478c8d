"""SQL for payments."""
from __future__ import annotations

from flint.db import Conn
from flint.db import for_update as lock_suffix
from flint.db.pages import select_page
from flint.payments.models import Payment

COLUMNS = (
    "id, merchant_id, order_id, checkout_session_id, payment_link_id, channel, status, amount, "
    "currency, card_brand, card_last4, card_exp_month, card_exp_year, failure_code, failure_message, "
    "processor_ref, amount_refunded, amount_refund_pending, created_at, updated_at, capture_method, "
    "amount_authorized, authorized_at, captured_at, canceled_at, pending_action, pending_amount, pending_since"
)


async def insert_payment(conn: Conn, payment: Payment) -> None:
    await conn.execute(
        f"""INSERT INTO payments ({COLUMNS})
            VALUES (:id, :merchant_id, :order_id, :checkout_session_id, :payment_link_id, :channel,
                    :status, :amount, :currency, :card_brand, :card_last4, :card_exp_month,
                    :card_exp_year, :failure_code, :failure_message, :processor_ref,
                    :amount_refunded, :amount_refund_pending, :created_at, :updated_at, :capture_method,
                    :amount_authorized, :authorized_at, :captured_at, :canceled_at, :pending_action,
                    :pending_amount, :pending_since)""",
        payment.__dict__,
    )


async def select_payment(conn: Conn, merchant_id: str, payment_id: str, *,
                         for_update: bool = False) -> Payment | None:
    """``for_update``: after its order's lock (orders.store.select_order), never before it."""
    row = await conn.fetch_one(
        f"SELECT {COLUMNS} FROM payments WHERE id = :id AND merchant_id = :merchant_id"
        + (lock_suffix(conn) if for_update else ""),
        {"id": payment_id, "merchant_id": merchant_id},
    )
    return Payment(**row) if row else None


async def select_succeeded_payment_of_order(conn: Conn, order_id: str, *, for_update: bool = False) -> Payment | None:
    row = await conn.fetch_one(
        f"SELECT {COLUMNS} FROM payments WHERE order_id = :order_id AND status = 'succeeded'"
        + (lock_suffix(conn) if for_update else ""),
        {"order_id": order_id},
    )
    return Payment(**row) if row else None


async def select_payments_page(
    conn: Conn, merchant_id: str, order_id: str | None, limit: int, starting_after: str | None
) -> tuple[list[Payment], bool]:
    where = "merchant_id = :merchant_id"
    params = {"merchant_id": merchant_id}
    if order_id is not None:
        where += " AND order_id = :order_id"
        params["order_id"] = order_id
    rows, has_more = await select_page(conn, table="payments", columns=COLUMNS, where=where,
                                       params=params, limit=limit, starting_after=starting_after)
    return [Payment(**r) for r in rows], has_more


async def update_payment_result(
    conn: Conn, payment_id: str, *, from_status: str, status: str, processor_ref: str | None,
    failure_code: str | None, failure_message: str | None, now: str,
) -> int:
    return await conn.execute(
        """UPDATE payments SET status = :status, processor_ref = COALESCE(:processor_ref, processor_ref),
                  failure_code = :failure_code, failure_message = :failure_message, updated_at = :now
           WHERE id = :id AND status = :from_status""",
        {"id": payment_id, "from_status": from_status, "status": status, "processor_ref": processor_ref,
         "failure_code": failure_code, "failure_message": failure_message, "now": now},
    )


async def record_authorization(conn: Conn, payment_id: str, processor_ref: str | None, now: str) -> int:
    """processing -> authorized (manual capture): the whole amount is held, none of it taken yet."""
    return await conn.execute(
        """UPDATE payments SET status = 'authorized', processor_ref = COALESCE(:processor_ref, processor_ref),
                  amount_authorized = amount, authorized_at = :now, failure_code = NULL, failure_message = NULL,
                  updated_at = :now
           WHERE id = :id AND status = 'processing'""",
        {"id": payment_id, "processor_ref": processor_ref, "now": now},
    )


async def claim_authorization(conn: Conn, payment_id: str, action: str, amount: int | None, now: str) -> int:
    """The one decision on an authorization (capture | void | expire): only the first claim changes a row."""
    return await conn.execute(
        """UPDATE payments SET pending_action = :action, pending_amount = :amount, pending_since = :now,
                  updated_at = :now
           WHERE id = :id AND status = 'authorized' AND pending_action IS NULL""",
        {"id": payment_id, "action": action, "amount": amount, "now": now},
    )


async def release_claim(conn: Conn, payment_id: str, action: str, now: str) -> int:
    """The processor refused a capture: the authorization stands, free for another decision."""
    return await conn.execute(
        """UPDATE payments SET pending_action = NULL, pending_amount = NULL, pending_since = NULL, updated_at = :now
           WHERE id = :id AND status = 'authorized' AND pending_action = :action""",
        {"id": payment_id, "action": action, "now": now},
    )


async def touch_claim(conn: Conn, payment_id: str, action: str, now: str) -> int:
    """A re-drive takes a stale claim over (so no other sweeper lists it again until it goes stale anew)."""
    return await conn.execute(
        """UPDATE payments SET pending_since = :now WHERE id = :id AND status = 'authorized'
             AND pending_action = :action""",
        {"id": payment_id, "action": action, "now": now},
    )


async def finish_capture(conn: Conn, payment_id: str, amount: int, processor_ref: str | None, now: str) -> int:
    """authorized -> succeeded for the captured ``amount`` (the rest of the authorization is released)."""
    return await conn.execute(
        """UPDATE payments SET status = 'succeeded', amount = :amount,
                  processor_ref = COALESCE(:processor_ref, processor_ref), captured_at = :now,
                  pending_action = NULL, pending_amount = NULL, pending_since = NULL, updated_at = :now
           WHERE id = :id AND status = 'authorized' AND pending_action = 'capture'""",
        {"id": payment_id, "amount": amount, "processor_ref": processor_ref, "now": now},
    )


async def finish_cancel(conn: Conn, payment_id: str, failure_code: str | None, failure_message: str | None,
                        processor_ref: str | None, now: str) -> int:
    """authorized -> canceled (voided by the merchant, expired by the sweeper or by the processor); keeps
    the ref the processor answered with (a connector may keep its state there)."""
    return await conn.execute(
        """UPDATE payments SET status = 'canceled', canceled_at = :now, failure_code = :failure_code,
                  failure_message = :failure_message, processor_ref = COALESCE(:processor_ref, processor_ref),
                  pending_action = NULL, pending_amount = NULL, pending_since = NULL, updated_at = :now
           WHERE id = :id AND status = 'authorized' AND pending_action IS NOT NULL""",
        {"id": payment_id, "failure_code": failure_code, "failure_message": failure_message,
         "processor_ref": processor_ref, "now": now},
    )


async def select_due_authorizations(conn: Conn, before: str, limit: int) -> list[Payment]:
    """Authorizations made before ``before`` that nobody is deciding on (the sweeper's expiry)."""
    rows = await conn.fetch_all(
        f"""SELECT {COLUMNS} FROM payments WHERE status = 'authorized' AND authorized_at <= :before
              AND pending_action IS NULL ORDER BY authorized_at LIMIT :limit""",
        {"before": before, "limit": limit})
    return [Payment(**r) for r in rows]


async def select_stale_claims(conn: Conn, before: str, limit: int) -> list[Payment]:
    """Authorizations whose decision was claimed before ``before`` and never finished (its process died,
    or the processor did not answer): the sweeper asks the processor again."""
    rows = await conn.fetch_all(
        f"""SELECT {COLUMNS} FROM payments WHERE status = 'authorized' AND pending_action IS NOT NULL
              AND pending_since <= :before ORDER BY authorized_at LIMIT :limit""",
        {"before": before, "limit": limit})
    return [Payment(**r) for r in rows]


async def reserve_refund(conn: Conn, payment_id: str, amount: int, now: str) -> int:
    """Reserve refundable money; the WHERE clause is the refund limit."""
    return await conn.execute(
        """UPDATE payments SET amount_refund_pending = amount_refund_pending + :amount, updated_at = :now
           WHERE id = :id AND status = 'succeeded'
             AND amount_refunded + amount_refund_pending + :amount <= amount""",
        {"id": payment_id, "amount": amount, "now": now},
    )


async def settle_refund(conn: Conn, payment_id: str, amount: int, succeeded: bool, now: str) -> None:
    await conn.execute(
        """UPDATE payments SET amount_refund_pending = amount_refund_pending - :amount,
                  amount_refunded = amount_refunded + :refunded, updated_at = :now
           WHERE id = :id""",
        {"id": payment_id, "amount": amount, "refunded": amount if succeeded else 0, "now": now},
    )


# Failed attempts per checkout session or payment link (the card testing limit, docs/api.md 13). The
# column is one of these two names, never input; payments_session / payments_link index it.
_CHANNEL_COLUMNS = ("checkout_session_id", "payment_link_id")


async def count_failed_payments(conn: Conn, column: str, value: str, since: str) -> int:
    assert column in _CHANNEL_COLUMNS, column
    row = await conn.fetch_one(
        f"SELECT COUNT(*) AS n FROM payments WHERE {column} = :value AND status = 'failed' AND created_at > :since",
        {"value": value, "since": since})
    return int(row["n"]) if row else 0


async def select_failed_payment_time(conn: Conn, column: str, value: str, since: str, offset: int) -> str | None:
    """When the (offset + 1)-th oldest failed payment since ``since`` was made."""
    assert column in _CHANNEL_COLUMNS, column
    row = await conn.fetch_one(
        f"""SELECT created_at FROM payments WHERE {column} = :value AND status = 'failed' AND created_at > :since
            ORDER BY created_at LIMIT 1 OFFSET :offset""",
        {"value": value, "since": since, "offset": offset})
    return row["created_at"] if row else None


async def count_payments_by_day(conn: Conn, merchant_id: str, since: str, until: str) -> list[dict]:
    """The console's Overview (console/overview.py): succeeded and failed payments per UTC day of the
    attempt, status and currency, how many and how much. created_at is RFC 3339 UTC text, so its first ten
    characters are the day on every engine; the range is read through payments_merchant_created."""
    return await conn.fetch_all(
        """SELECT substr(created_at, 1, 10) AS day, status, currency, COUNT(*) AS n, SUM(amount) AS amount
           FROM payments
           WHERE merchant_id = :m AND created_at >= :since AND created_at < :until
             AND status IN ('succeeded', 'failed')
           GROUP BY substr(created_at, 1, 10), status, currency""",
        {"m": merchant_id, "since": since, "until": until})
