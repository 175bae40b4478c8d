"""SQL for the checkout hook: which installations hook a merchant's payments, and the call log."""
from __future__ import annotations

from typing import Any

from flint.db import Conn
from flint.db import for_update as lock_suffix
from flint.db.pages import select_page

CALL_COLUMNS = ("id, merchant_id, app_id, installation_id, order_id, channel, checkout_session_id, payment_link_id, "
                "outcome, status_code, latency_ms, actions, ignored, applied, error, created_at")


async def select_hooked_installations(conn: Conn, merchant_id: str, hook: str) -> list[dict[str, Any]]:
    """Active installations on this merchant whose merchant consented to ``hook`` (what the app declares
    now may be more: that waits for approval, API.md 12), oldest installation first (the order their
    answers are combined in)."""
    rows = await conn.fetch_all(
        """SELECT i.id AS installation_id, a.id AS app_id, a.hook_url, i.consented_hooks AS hooks, a.hook_failure_mode,
                  a.webhook_secret, a.previous_webhook_secret, a.previous_webhook_secret_expires_at
           FROM installations i JOIN apps a ON a.id = i.app_id
           WHERE i.merchant_id = :merchant_id AND i.status = 'active' AND a.hook_url IS NOT NULL
           ORDER BY i.created_at, i.id""",
        {"merchant_id": merchant_id})
    return [r for r in rows if f'"{hook}"' in r["hooks"]]


async def insert_calls(conn: Conn, calls: list[dict[str, Any]]) -> None:
    for call in calls:
        await conn.execute(
            f"""INSERT INTO hook_calls ({CALL_COLUMNS})
                VALUES (:id, :merchant_id, :app_id, :installation_id, :order_id, :channel, :checkout_session_id,
                        :payment_link_id, :outcome, :status_code, :latency_ms, :actions, :ignored, :applied, :error,
                        :created_at)""", call)


async def annotate_order(conn: Conn, order_id: str, annotations: dict[str, Any], at: str) -> None:
    """Merges the apps' annotations into the order's extension_data. The order is locked for the
    read-merge-write (PostgreSQL): two payment attempts' hooks annotating it at once both land."""
    import json

    row = await conn.fetch_one("SELECT extension_data FROM orders WHERE id = :id" + lock_suffix(conn),
                               {"id": order_id})
    data = json.loads(row["extension_data"]) if row else {}
    data.update(annotations)
    await conn.execute("UPDATE orders SET extension_data = :data, updated_at = :at WHERE id = :id",
                       {"id": order_id, "data": json.dumps(data, sort_keys=True), "at": at})


async def select_calls_page(conn: Conn, merchant_id: str, order_id: str | None, limit: int, starting_after: str | None):
    where, params = "merchant_id = :merchant_id", {"merchant_id": merchant_id}
    if order_id:
        where += " AND order_id = :order_id"
        params["order_id"] = order_id
    return await select_page(conn, table="hook_calls", columns=CALL_COLUMNS, where=where, params=params,
                             limit=limit, starting_after=starting_after)
