"""SQL for the mail outbox (the emails table) and the unsubscribed addresses (mail_suppressions),
migration 0019. Every read for a caller names the merchant; the worker's claim and outcome name the row
and the lease it was claimed under."""
from __future__ import annotations

from typing import Any

from flint.db import Conn
from flint.db import for_update as lock_suffix
from flint.db.pages import select_page
from flint.mail.models import Email

_FIELDS = ("id", "merchant_id", "order_id", "payment_link_id", "kind", "to_address", "locale", "cause", "context",
           "message_id", "status", "attempts", "last_error", "next_attempt_at", "lease_until", "created_at",
           "updated_at", "sent_at")
COLUMNS = ", ".join(_FIELDS)


async def insert_email(conn: Conn, email: Email) -> bool:
    """False (nothing written) when a mail for the same cause exists already: the cause's transaction
    may run twice (a retried request, two sweepers), the mail is written once."""
    done = await conn.execute(
        f"""INSERT INTO emails ({COLUMNS}) VALUES ({', '.join(':' + f for f in _FIELDS)})
            ON CONFLICT (cause) DO NOTHING""",
        {f: getattr(email, f) for f in _FIELDS})
    return done == 1


async def select_email(conn: Conn, merchant_id: str, email_id: str) -> Email | None:
    row = await conn.fetch_one(f"SELECT {COLUMNS} FROM emails WHERE id = :id AND merchant_id = :merchant_id",
                               {"id": email_id, "merchant_id": merchant_id})
    return Email(**row) if row else None


async def select_email_by_cause(conn: Conn, cause: str) -> Email | None:
    row = await conn.fetch_one(f"SELECT {COLUMNS} FROM emails WHERE cause = :cause", {"cause": cause})
    return Email(**row) if row else None


async def select_emails_page(conn: Conn, merchant_id: str, order_id: str | None, limit: int,
                             starting_after: str | None) -> tuple[list[Email], bool]:
    """Newest first, keyset on (created_at, id): index emails_merchant, or emails_order for one order."""
    where = "merchant_id = :merchant_id" + (" AND order_id = :order_id" if order_id is not None else "")
    rows, more = await select_page(conn, table="emails", columns=COLUMNS, where=where,
                                   params={"merchant_id": merchant_id, "order_id": order_id},
                                   limit=limit, starting_after=starting_after)
    return [Email(**row) for row in rows], more


# -- the worker ---------------------------------------------------------------------------------------

async def claim_due(conn: Conn, *, now: str, lease_until: str, limit: int) -> list[Email]:
    """Lease up to ``limit`` mails: pending ones that are due (oldest first), and sending ones whose
    lease lapsed (their worker died or hung between claiming and recording: they are sent again, with
    the same Message-ID). Each becomes ``sending`` under ``lease_until`` with its attempt counted
    before anything is sent, so a crash mid-send still counts.

    Several workers claim at once on PostgreSQL: the candidates are locked ``FOR NO KEY UPDATE SKIP
    LOCKED``, so each takes rows no other claim holds, and a row another claim leased since this
    statement's snapshot is re-read and dropped (it no longer matches). On SQLite ``BEGIN IMMEDIATE``
    already serialises claims."""
    return [Email(**row) for row in await conn.fetch_all(
        f"""UPDATE emails SET status = 'sending', attempts = attempts + 1, lease_until = :lease_until,
                   updated_at = :now
            WHERE id IN (
                SELECT id FROM emails
                WHERE (status = 'pending' AND next_attempt_at <= :now)
                   OR (status = 'sending' AND lease_until <= :now)
                ORDER BY next_attempt_at LIMIT :limit{lock_suffix(conn, skip_locked=True)})
            RETURNING {COLUMNS}""",
        {"now": now, "lease_until": lease_until, "limit": limit})]


async def record_outcome(conn: Conn, email_id: str, claimed_lease: str, fields: dict[str, Any]) -> int:
    """An attempt's outcome, only while the row is still ``sending`` under the lease it was claimed
    with: once that lease lapsed and another worker claimed it again, the late outcome must not clear
    the newer lease (a third worker would send it while the second still is). 0 when it no longer
    applies."""
    sets = ", ".join(f"{name} = :{name}" for name in fields)
    return await conn.execute(
        f"UPDATE emails SET {sets} WHERE id = :id AND status = 'sending' AND lease_until = :claimed_lease",
        dict(fields, id=email_id, claimed_lease=claimed_lease))


async def count_by_status(conn: Conn) -> dict[str, int]:
    """Every status's count (for an operator's look at the outbox, and the tests)."""
    rows = await conn.fetch_all("SELECT status, COUNT(*) AS n FROM emails GROUP BY status")
    return {row["status"]: int(row["n"]) for row in rows}


# -- unsubscribed addresses ---------------------------------------------------------------------------

async def is_suppressed(conn: Conn, merchant_id: str, address: str, kind: str) -> bool:
    row = await conn.fetch_one(
        """SELECT 1 AS one FROM mail_suppressions
           WHERE merchant_id = :merchant_id AND address = :address AND kind = :kind""",
        {"merchant_id": merchant_id, "address": address, "kind": kind})
    return row is not None


async def insert_suppression(conn: Conn, merchant_id: str, address: str, kind: str, at: str) -> bool:
    """False when the address was suppressed already (unsubscribing twice is no error)."""
    done = await conn.execute(
        """INSERT INTO mail_suppressions (merchant_id, address, kind, created_at)
           VALUES (:merchant_id, :address, :kind, :at)
           ON CONFLICT (merchant_id, address, kind) DO NOTHING""",
        {"merchant_id": merchant_id, "address": address, "kind": kind, "at": at})
    return done == 1


async def suppress_pending(conn: Conn, merchant_id: str, address: str, kind: str, at: str) -> int:
    """Mails of ``kind`` to the address still waiting for an attempt are never sent (one already claimed
    by a worker is on its way and goes)."""
    return await conn.execute(
        """UPDATE emails SET status = 'suppressed', next_attempt_at = NULL, updated_at = :at
           WHERE merchant_id = :merchant_id AND to_address = :address AND kind = :kind AND status = 'pending'""",
        {"merchant_id": merchant_id, "address": address, "kind": kind, "at": at})


async def erase_order_addresses(conn: Conn, order_id: str, at: str) -> int:
    """An order's redaction (docs/api.md 14): its mails keep no address, and those still waiting are never
    sent (one already claimed by a worker is on its way; its outcome is recorded on the erased row)."""
    return await conn.execute(
        """UPDATE emails SET to_address = '', updated_at = :at,
                  status = CASE WHEN status = 'pending' THEN 'suppressed' ELSE status END,
                  next_attempt_at = CASE WHEN status = 'pending' THEN NULL ELSE next_attempt_at END
           WHERE order_id = :order_id AND to_address <> ''""",
        {"order_id": order_id, "at": at})
