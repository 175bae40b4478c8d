"""SQL for checkout sessions."""
from __future__ import annotations

from flint.checkout.models import CheckoutSession
from flint.db import Conn
from flint.db import for_update as lock_suffix
from flint.db.pages import select_page

COLUMNS = (
    "id, merchant_id, order_id, mode, status, success_url, cancel_url, expires_at, "
    "recovery_enabled, abandon_after, recovery_payment_link_id, created_at, updated_at, "
    "fallback_reason, fallback_at, buyer_left_at, abandon_at, dropped_off_at, drop_off_reason, "
    "created_by_type, created_by_id, collect, custom_fields, recovery_email, locale, capture"
)


async def insert_session(conn: Conn, session: CheckoutSession) -> None:
    await conn.execute(
        f"""INSERT INTO checkout_sessions ({COLUMNS})
            VALUES (:id, :merchant_id, :order_id, :mode, :status, :success_url, :cancel_url,
                    :expires_at, :recovery_enabled, :abandon_after, :recovery_payment_link_id,
                    :created_at, :updated_at, :fallback_reason, :fallback_at, :buyer_left_at, :abandon_at, :dropped_off_at,
                    :drop_off_reason, :created_by_type, :created_by_id, :collect, :custom_fields,
                    :recovery_email, :locale, :capture)""",
        session.__dict__,
    )


async def select_session(conn: Conn, merchant_id: str, session_id: str, *,
                         for_update: bool = False) -> CheckoutSession | None:
    """``for_update``: after its order's lock (orders.store.select_order), never before it."""
    row = await conn.fetch_one(
        f"SELECT {COLUMNS} FROM checkout_sessions WHERE id = :id AND merchant_id = :merchant_id"
        + (lock_suffix(conn) if for_update else ""),
        {"id": session_id, "merchant_id": merchant_id},
    )
    return CheckoutSession(**row) if row else None


async def select_sessions_page(conn: Conn, merchant_id: str, limit: int, starting_after: str | None):
    rows, has_more = await select_page(
        conn, table="checkout_sessions", columns=COLUMNS, where="merchant_id = :merchant_id",
        params={"merchant_id": merchant_id}, limit=limit, starting_after=starting_after,
    )
    return [CheckoutSession(**r) for r in rows], has_more


async def select_open_sessions_of_order(conn: Conn, order_id: str) -> list[CheckoutSession]:
    rows = await conn.fetch_all(
        f"SELECT {COLUMNS} FROM checkout_sessions WHERE order_id = :order_id AND status = 'open'",
        {"order_id": order_id},
    )
    return [CheckoutSession(**r) for r in rows]


async def select_due_sessions(conn: Conn, now: str, limit: int) -> list[tuple[str, str]]:
    """(session id, order id) of open sessions past their time, for the expiry sweeper."""
    rows = await conn.fetch_all(
        """SELECT id, order_id FROM checkout_sessions WHERE status = 'open' AND expires_at <= :now
           ORDER BY expires_at LIMIT :limit""",
        {"now": now, "limit": limit},
    )
    return [(r["id"], r["order_id"]) for r in rows]


async def select_session_by_id(conn: Conn, session_id: str, *, for_update: bool = False) -> CheckoutSession | None:
    """``for_update``: after its order's lock (orders.store.select_order), never before it."""
    row = await conn.fetch_one(
        f"SELECT {COLUMNS} FROM checkout_sessions WHERE id = :id" + (lock_suffix(conn) if for_update else ""),
        {"id": session_id})
    return CheckoutSession(**row) if row else None


async def update_session_status(conn: Conn, session_id: str, *, from_status: str, to_status: str, at: str) -> int:
    """Conditional: of two racing transitions only one changes the row (and emits the event)."""
    return await conn.execute(
        """UPDATE checkout_sessions SET status = :to_status, updated_at = :at
           WHERE id = :id AND status = :from_status""",
        {"id": session_id, "from_status": from_status, "to_status": to_status, "at": at},
    )


async def complete_open_session(conn: Conn, session_id: str, at: str) -> CheckoutSession | None:
    """open → complete, returning the completed row (None if it was not open)."""
    row = await conn.fetch_one(
        f"""UPDATE checkout_sessions SET status = 'complete', updated_at = :at
            WHERE id = :id AND status = 'open' RETURNING {COLUMNS}""",
        {"id": session_id, "at": at},
    )
    return CheckoutSession(**row) if row else None


async def mark_fallback(conn: Conn, session_id: str, reason: str, at: str) -> CheckoutSession | None:
    """The first fallback of an open session wins (and is announced); later ones change nothing."""
    row = await conn.fetch_one(
        f"""UPDATE checkout_sessions SET fallback_reason = :reason, fallback_at = :at, updated_at = :at
            WHERE id = :id AND status = 'open' AND fallback_at IS NULL RETURNING {COLUMNS}""",
        {"id": session_id, "reason": reason, "at": at},
    )
    return CheckoutSession(**row) if row else None


# ``locale`` below: the buyer's language as their request negotiated it, kept for the recovery email
# (docs/api.md 16) in the UPDATE the buyer's page makes anyway; None keeps what is stored.

async def mark_buyer_left(conn: Conn, session_id: str, at: str, abandon_at: str, locale: str | None = None) -> int:
    """The beacon: a watched session now counts as abandoned once ``abandon_at`` passes without the
    buyer coming back (a reload or a quick visit elsewhere is not a drop-off)."""
    return await conn.execute(
        """UPDATE checkout_sessions SET buyer_left_at = :at, updated_at = :at,
               abandon_at = CASE WHEN abandon_at IS NULL THEN NULL ELSE :abandon_at END,
               locale = COALESCE(:locale, locale)
           WHERE id = :id AND status = 'open'""",
        {"id": session_id, "at": at, "abandon_at": abandon_at, "locale": locale},
    )


async def note_buyer_back(conn: Conn, session_id: str, abandon_at: str, locale: str | None = None) -> int:
    """The widget loaded again for a watched session: the buyer is back, not gone."""
    return await conn.execute(
        """UPDATE checkout_sessions SET buyer_left_at = NULL, abandon_at = :abandon_at,
               locale = COALESCE(:locale, locale)
           WHERE id = :id AND status = 'open' AND abandon_at IS NOT NULL AND recovery_payment_link_id IS NULL""",
        {"id": session_id, "abandon_at": abandon_at, "locale": locale},
    )


async def note_buyer_activity(conn: Conn, session_id: str, abandon_at: str, locale: str | None = None) -> None:
    """A buyer acting in a watched session pushes its idle deadline back."""
    await conn.execute(
        """UPDATE checkout_sessions SET abandon_at = :abandon_at, locale = COALESCE(:locale, locale)
           WHERE id = :id AND abandon_at IS NOT NULL AND recovery_payment_link_id IS NULL""",
        {"id": session_id, "abandon_at": abandon_at, "locale": locale},
    )


async def select_dropped_off_ids(conn: Conn, now: str, limit: int) -> list[str]:
    """Watched open sessions past their abandon_at: abandon_after since the buyer left (the
    beacon) or since their last activity."""
    rows = await conn.fetch_all(
        """SELECT id FROM checkout_sessions
           WHERE status = 'open' AND recovery_payment_link_id IS NULL AND abandon_at IS NOT NULL
             AND abandon_at <= :now
           ORDER BY abandon_at LIMIT :limit""",
        {"now": now, "limit": limit},
    )
    return [r["id"] for r in rows]


async def select_sessions_by_ids(conn: Conn, ids: list[str], *, for_update: bool = False,
                                 skip_locked: bool = False) -> list[CheckoutSession]:
    """``for_update`` locks them in id order (after their orders' locks); with ``skip_locked`` the
    ones another transaction holds are left out."""
    if not ids:
        return []
    binds = {f"s{i}": value for i, value in enumerate(ids)}
    rows = await conn.fetch_all(
        f"SELECT {COLUMNS} FROM checkout_sessions WHERE id IN ({', '.join(':' + k for k in binds)}) ORDER BY id"
        + (lock_suffix(conn, skip_locked=skip_locked) if for_update else ""), binds)
    return [CheckoutSession(**r) for r in rows]


async def mark_dropped_off(conn: Conn, session_id: str, *, link_id: str, reason: str, at: str) -> int:
    """Records the drop-off and its one recovery link; 0 if another sweeper got there first."""
    return await conn.execute(
        """UPDATE checkout_sessions SET recovery_payment_link_id = :link_id, dropped_off_at = :at,
               drop_off_reason = :reason, abandon_at = NULL, updated_at = :at
           WHERE id = :id AND recovery_payment_link_id IS NULL""",
        {"id": session_id, "link_id": link_id, "reason": reason, "at": at},
    )


async def stop_watching(conn: Conn, session_id: str) -> None:
    await conn.execute("UPDATE checkout_sessions SET abandon_at = NULL WHERE id = :id", {"id": session_id})


async def count_sessions_created(conn: Conn, merchant_id: str, since: str, until: str) -> int:
    """Checkout sessions made in the range: the first step of the console's recovery funnel
    (checkout_sessions_merchant_created)."""
    row = await conn.fetch_one(
        """SELECT COUNT(*) AS n FROM checkout_sessions
           WHERE merchant_id = :m AND created_at >= :since AND created_at < :until""",
        {"m": merchant_id, "since": since, "until": until})
    return int(row["n"]) if row else 0
