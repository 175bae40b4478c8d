"""SQL for the checkout hook's call log (which apps to ask is the installations' and apps' to say)."""
from __future__ import annotations

from flint.db import Conn, insert_rows
from flint.db.pages import select_page
from flint.hooks.models import HookCall

CALL_COLUMNS = ("id, merchant_id, app_id, installation_id, order_id, channel, checkout_session_id, payment_link_id, "
                "outcome, status_code, latency_ms, actions, ignored, applied, error, created_at")


async def insert_calls(conn: Conn, calls: list[HookCall]) -> None:
    await insert_rows(conn, "hook_calls", CALL_COLUMNS, calls)


async def select_calls_page(conn: Conn, merchant_id: str, order_id: str | None, limit: int, starting_after: str | None):
    where, params = "merchant_id = :merchant_id", {"merchant_id": merchant_id}
    if order_id:
        where += " AND order_id = :order_id"
        params["order_id"] = order_id
    rows, has_more = await select_page(conn, table="hook_calls", columns=CALL_COLUMNS, where=where, params=params,
                                       limit=limit, starting_after=starting_after)
    return [HookCall(**row) for row in rows], has_more


async def count_calls_by_day(conn: Conn, merchant_id: str, since: str, until: str) -> list[dict]:
    """The console's Overview: hook calls per UTC day (the first ten characters of created_at) and outcome
    (models.OUTCOMES), read through hook_calls_merchant for the range."""
    return await conn.fetch_all(
        """SELECT substr(created_at, 1, 10) AS day, outcome, COUNT(*) AS n
           FROM hook_calls
           WHERE merchant_id = :m AND created_at >= :since AND created_at < :until
           GROUP BY substr(created_at, 1, 10), outcome""",
        {"m": merchant_id, "since": since, "until": until})


async def select_order_calls_between(conn: Conn, merchant_id: str, order_id: str, after: str | None,
                                     until: str | None, limit: int) -> list[HookCall]:
    """The console's order timeline (docs/api.md 15): the order's hook calls made after ``after`` and up to
    ``until`` (created_at; None: no bound), oldest first, at most ``limit``, read through hook_calls_order."""
    where, params = "merchant_id = :merchant_id AND order_id = :order_id", {
        "merchant_id": merchant_id, "order_id": order_id, "limit": limit}
    if after is not None:
        where += " AND created_at > :after"
        params["after"] = after
    if until is not None:
        where += " AND created_at <= :until"
        params["until"] = until
    rows = await conn.fetch_all(
        f"SELECT {CALL_COLUMNS} FROM hook_calls WHERE {where} ORDER BY created_at, id LIMIT :limit", params)
    return [HookCall(**row) for row in rows]
