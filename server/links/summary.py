"""The recovery funnel a merchant reads (GET /v1/recovery/summary): drop-offs, the recovery links
made for them, the links that were paid, the money they brought back and how long that took."""
from __future__ import annotations

import statistics
from datetime import datetime, timedelta, timezone

from flint import clock
from flint.errors import invalid
from flint.links import store
from flint.runtime import Runtime

DEFAULT_DAYS, MAX_DAYS = 30, 366


def parse_bound(value: str | None, param: str) -> datetime | None:
    """RFC 3339 (2026-11-26T10:00:00Z) or a date (2026-11-26, meaning its midnight UTC)."""
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("z", "Z"))
    except ValueError:
        raise invalid("parameter_invalid", f"'{param}' must be an RFC 3339 time or a date (YYYY-MM-DD).", param) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)


async def summary(rt: Runtime, merchant_id: str, since: datetime | None, until: datetime | None) -> dict:
    until = until or clock.now()
    since = since or until - timedelta(days=DEFAULT_DAYS)
    if since >= until:
        raise invalid("parameter_invalid", "'from' must be before 'to'.", "from")
    if until - since > timedelta(days=MAX_DAYS):
        raise invalid("parameter_invalid", f"The range is at most {MAX_DAYS} days.", "from")
    binds = {"m": merchant_id, "since": clock.iso(since), "until": clock.iso(until)}
    async with rt.db.read() as conn:
        reasons = await store.select_drop_offs_by_reason(conn, merchant_id, binds["since"], binds["until"])
        links_created = await store.count_recovery_links(conn, merchant_id, binds["since"], binds["until"])
        paid = await store.select_paid_recovery_links(conn, merchant_id, binds["since"], binds["until"])
    drop_offs = {"total": 0, "left": 0, "idle": 0, "expired": 0}
    in_session = 0
    for row in reasons:
        drop_offs[row["reason"]] = int(row["n"])
        drop_offs["total"] += int(row["n"])
        in_session += int(row["completed"] or 0)
    amounts: dict[str, int] = {}
    waits = []
    for row in paid:
        amounts[row["currency"]] = amounts.get(row["currency"], 0) + int(row["amount"])
        waits.append((clock.parse(row["paid_at"]) - clock.parse(row["link_at"])).total_seconds())
    return {
        "object": "recovery_summary",
        "from": clock.public(clock.iso(since)),
        "to": clock.public(clock.iso(until)),
        "drop_offs": drop_offs,
        "links_created": links_created,
        "links_paid": len(paid),
        "recovery_rate": round(len(paid) / links_created, 4) if links_created else None,
        "amount_recovered": [{"currency": c, "amount": a} for c, a in sorted(amounts.items())],
        "median_time_to_recovery_seconds": round(statistics.median(waits)) if waits else None,
        # Buyers who came back to the session they had left and paid there, after all.
        "recovered_in_original_session": in_session,
    }
