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
