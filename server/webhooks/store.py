"""SQL for webhook endpoints, deliveries and attempts."""
from __future__ import annotations

from typing import Any

from flint.db import Conn, insert_rows
from flint.db import for_update as lock_suffix
from flint.db.pages import select_page
from flint.webhooks.models import Attempt, Delivery, Endpoint

ENDPOINT_COLUMNS = (
    "id, merchant_id, url, events, description, status, disabled_reason, secret, previous_secret, "
    "previous_expires_at, failing_since, created_at, updated_at, app_id, installation_id, owner, "
    "installation_scopes, created_by_type, created_by_id"
)
DELIVERY_COLUMNS = (
    "id, endpoint_id, merchant_id, event_id, event_type, status, attempts, next_attempt_at, lease_until, "
    "final_attempt, last_status_code, last_error, last_attempt_at, created_at, updated_at"
)
ATTEMPT_COLUMNS = "id, delivery_id, attempted_at, status_code, error, duration_ms"


# -- endpoints -----------------------------------------------------------------------------------------

async def insert_endpoint(conn: Conn, endpoint: Endpoint) -> None:
    await conn.execute(
        f"""INSERT INTO webhook_endpoints ({ENDPOINT_COLUMNS})
            VALUES (:id, :merchant_id, :url, :events, :description, :status, :disabled_reason, :secret,
                    :previous_secret, :previous_expires_at, :failing_since, :created_at, :updated_at, :app_id,
                    :installation_id, :owner, :installation_scopes, :created_by_type, :created_by_id)""",
        endpoint.__dict__,
    )


def _owned_by(installation_id: str | None) -> str:
    """Whose endpoints a caller sees: the merchant's own (a merchant key), or those one installation made
    (its app token). An app's webhook_url endpoint is neither's to manage (docs/api.md 12)."""
    if installation_id is None:
        return "owner = 'merchant'"
    return "owner = 'installation' AND installation_id = :installation_id"


async def select_endpoint(conn: Conn, merchant_id: str, endpoint_id: str, *, installation_id: str | None = None,
                          for_update: bool = False) -> Endpoint | None:
    """The caller's endpoint (see _owned_by; None for anyone else's: 404). ``for_update`` locks it
    (PostgreSQL): a change decided on what it read (a status transition, the secret a rotation keeps as
    previous) cannot interleave with another one. Lock order: an endpoint before its deliveries, as
    close_endpoint and the worker's flush take them."""
    row = await conn.fetch_one(
        f"""SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints
            WHERE id = :id AND merchant_id = :merchant_id AND status <> 'deleted' AND {_owned_by(installation_id)}"""
        + (lock_suffix(conn) if for_update else ""),
        {"id": endpoint_id, "merchant_id": merchant_id, "installation_id": installation_id},
    )
    return Endpoint(**row) if row else None


async def select_endpoints_by_ids(conn: Conn, ids: list[str]) -> dict[str, Endpoint]:
    if not ids:
        return {}
    binds = {f"id{i}": value for i, value in enumerate(ids)}
    rows = await conn.fetch_all(
        f"SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE id IN ({', '.join(':' + k for k in binds)})", binds)
    return {row["id"]: Endpoint(**row) for row in rows}


async def select_endpoints_page(conn: Conn, merchant_id: str, installation_id: str | None, limit: int,
                                starting_after: str | None):
    rows, has_more = await select_page(
        conn, table="webhook_endpoints", columns=ENDPOINT_COLUMNS,
        where=f"merchant_id = :merchant_id AND status <> 'deleted' AND {_owned_by(installation_id)}",
        params={"merchant_id": merchant_id, "installation_id": installation_id},
        limit=limit, starting_after=starting_after,
    )
    return [Endpoint(**r) for r in rows], has_more


async def count_endpoints(conn: Conn, merchant_id: str, installation_id: str | None) -> int:
    """The caller's endpoints that count against its cap: every one not deleted (a disabled one may be
    enabled again)."""
    row = await conn.fetch_one(
        f"""SELECT COUNT(*) AS n FROM webhook_endpoints
            WHERE merchant_id = :merchant_id AND status <> 'deleted' AND {_owned_by(installation_id)}""",
        {"merchant_id": merchant_id, "installation_id": installation_id})
    return int(row["n"]) if row else 0


async def select_enabled_filters(conn: Conn, merchant_id: str) -> list[dict[str, Any]]:
    """What the outbox fans an event out to: the merchant's enabled endpoints (its own and its apps'),
    their filters, and for an app's endpoints what decides what they may read."""
    return await conn.fetch_all(
        """SELECT id, events, owner, app_id, installation_scopes FROM webhook_endpoints
           WHERE merchant_id = :merchant_id AND status = 'enabled'""",
        {"merchant_id": merchant_id},
    )


async def select_app_endpoint(conn: Conn, installation_id: str, *, for_update: bool = False) -> Endpoint | None:
    """An installation's endpoint at its app's webhook_url, if enabled."""
    row = await conn.fetch_one(
        f"""SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints
            WHERE installation_id = :id AND owner = 'app' AND status = 'enabled'"""
        + (lock_suffix(conn) if for_update else ""), {"id": installation_id})
    return Endpoint(**row) if row else None


async def select_installation_endpoint_ids(conn: Conn, installation_id: str) -> list[str]:
    """The endpoints an installation's app made with webhooks:write, not yet deleted, in id order."""
    rows = await conn.fetch_all(
        """SELECT id FROM webhook_endpoints WHERE installation_id = :id AND owner = 'installation'
           AND status <> 'deleted' ORDER BY id""", {"id": installation_id})
    return [row["id"] for row in rows]


async def set_installation_scopes(conn: Conn, installation_id: str, scopes_json: str, at: str) -> None:
    await conn.execute(
        """UPDATE webhook_endpoints SET installation_scopes = :scopes, updated_at = :at
           WHERE installation_id = :id AND status <> 'deleted'""",
        {"id": installation_id, "scopes": scopes_json, "at": at})


async def update_endpoint(conn: Conn, endpoint_id: str, fields: dict[str, Any]) -> None:
    sets = ", ".join(f"{name} = :{name}" for name in fields)
    await conn.execute(f"UPDATE webhook_endpoints SET {sets} WHERE id = :id", dict(fields, id=endpoint_id))


async def note_endpoint_success(conn: Conn, endpoint_ids: list[str]) -> None:
    for endpoint_id in endpoint_ids:
        await conn.execute(
            "UPDATE webhook_endpoints SET failing_since = NULL WHERE id = :id AND failing_since IS NOT NULL",
            {"id": endpoint_id})


async def note_endpoint_failure(conn: Conn, endpoint_id: str, at: str) -> str:
    """Starts the endpoint's failing streak if none is running; returns when it started."""
    row = await conn.fetch_one(
        """UPDATE webhook_endpoints SET failing_since = COALESCE(failing_since, :at)
           WHERE id = :id RETURNING failing_since""",
        {"id": endpoint_id, "at": at},
    )
    assert row is not None
    return row["failing_since"]


async def close_endpoint(conn: Conn, endpoint_id: str, *, status: str, reason: str | None, at: str,
                         from_statuses: tuple[str, ...] = ("enabled",)) -> Endpoint | None:
    """→ disabled or deleted (None if it was in none of ``from_statuses``); its pending deliveries
    fail with it (``endpoint_disabled`` / ``endpoint_deleted``), so a manual retry can bring them back."""
    allowed = ", ".join(f"'{value}'" for value in from_statuses)
    row = await conn.fetch_one(
        f"""UPDATE webhook_endpoints SET status = :status, disabled_reason = :reason, updated_at = :at
            WHERE id = :id AND status IN ({allowed}) RETURNING {ENDPOINT_COLUMNS}""",
        {"id": endpoint_id, "status": status, "reason": reason, "at": at},
    )
    if row is None:
        return None
    await fail_pending_of_endpoint(conn, endpoint_id, f"endpoint_{status}", at)
    return Endpoint(**row)


async def fail_pending_of_endpoint(conn: Conn, endpoint_id: str, error: str, at: str) -> int:
    return await conn.execute(
        """UPDATE webhook_deliveries SET status = 'failed', next_attempt_at = NULL, lease_until = NULL,
               last_error = :error, updated_at = :at
           WHERE endpoint_id = :id AND status = 'pending'""",
        {"id": endpoint_id, "error": error, "at": at},
    )


# -- deliveries -----------------------------------------------------------------------------------------

async def insert_deliveries(conn: Conn, deliveries: list[Delivery]) -> None:
    await insert_rows(conn, "webhook_deliveries", DELIVERY_COLUMNS, deliveries)


async def select_delivery(conn: Conn, merchant_id: str, delivery_id: str, *,
                          for_update: bool = False) -> Delivery | None:
    """``for_update``: after its endpoint's lock (select_endpoint), never before it."""
    row = await conn.fetch_one(
        f"SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries WHERE id = :id AND merchant_id = :merchant_id"
        + (lock_suffix(conn) if for_update else ""),
        {"id": delivery_id, "merchant_id": merchant_id},
    )
    return Delivery(**row) if row else None


async def select_deliveries_page(conn: Conn, endpoint_id: str, limit: int, starting_after: str | None):
    rows, has_more = await select_page(
        conn, table="webhook_deliveries", columns=DELIVERY_COLUMNS, where="endpoint_id = :endpoint_id",
        params={"endpoint_id": endpoint_id}, limit=limit, starting_after=starting_after,
    )
    return [Delivery(**r) for r in rows], has_more


async def claim_due(conn: Conn, *, now: str, lease_until: str, limit: int, per_endpoint: int,
                    inflight: dict[str, int], scan: int = 512) -> list[dict[str, Any]]:
    """Lease up to ``limit`` due deliveries, oldest due first, leaving each endpoint at most
    ``per_endpoint`` in flight counting ``inflight`` (this worker's sends under way); endpoints
    already at that limit are skipped. The lease is what makes a crashed worker's deliveries due
    again once it lapses.

    Only the ``scan`` oldest due rows are considered, read through the due index, so a claim costs
    the same with a backlog of a million as of ten (fairness is exact within that window).

    Several workers claim at once on PostgreSQL: the window's rows are locked ``FOR UPDATE SKIP
    LOCKED``, so each claimer ranks and leases only rows no other claim holds, and a row another
    worker leased since this statement's snapshot is re-read and dropped (its lease is live).
    PostgreSQL refuses a row lock beside a window function, so the lock sits in the innermost
    SELECT and ROW_NUMBER ranks its result one level up. On SQLite ``BEGIN IMMEDIATE`` already
    serialises claims and ``for_update`` adds nothing: one SQL text for both."""
    # The window is sized to the claim: every row in it is locked (PostgreSQL) and ranked (both), so
    # a claim for one free slot does not pay for 512 rows; a few times the demand still leaves room
    # for busy endpoints' rows that the per-endpoint limit passes over.
    window = min(scan, 4 * max(limit, per_endpoint))
    binds: dict[str, Any] = {"now": now, "lease_until": lease_until, "limit": limit, "per_endpoint": per_endpoint,
                             "scan": window}
    full = [endpoint for endpoint, count in inflight.items() if count >= per_endpoint]
    busy = {endpoint: count for endpoint, count in inflight.items() if 0 < count < per_endpoint}
    skip = ""
    if full:
        binds.update({f"full{i}": value for i, value in enumerate(full)})
        skip = f" AND endpoint_id NOT IN ({', '.join(f':full{i}' for i in range(len(full)))})"
    room = ":per_endpoint"
    if busy:
        cases = []
        for i, (endpoint, count) in enumerate(busy.items()):
            binds[f"busy{i}"], binds[f"sending{i}"] = endpoint, count
            cases.append(f"WHEN :busy{i} THEN :sending{i}")
        room = f":per_endpoint - (CASE endpoint_id {' '.join(cases)} ELSE 0 END)"
    return await conn.fetch_all(
        f"""UPDATE webhook_deliveries SET lease_until = :lease_until
            WHERE id IN (
                SELECT id FROM (
                    SELECT id, endpoint_id, next_attempt_at,
                           ROW_NUMBER() OVER (PARTITION BY endpoint_id ORDER BY next_attempt_at) AS nth
                    FROM (SELECT id, endpoint_id, next_attempt_at FROM webhook_deliveries
                          WHERE status = 'pending' AND next_attempt_at <= :now
                            AND (lease_until IS NULL OR lease_until <= :now){skip}
                          ORDER BY next_attempt_at LIMIT :scan{lock_suffix(conn, skip_locked=True)}) AS window_rows
                ) AS due
                WHERE nth <= {room} ORDER BY next_attempt_at LIMIT :limit)
            RETURNING id, endpoint_id, event_id, attempts, final_attempt""",
        binds,
    )


async def record_result(conn: Conn, delivery_id: str, lease_until: str, fields: dict[str, Any]) -> int:
    """Writes an attempt's outcome, but only while the delivery is still pending (a delivery the
    merchant disabled meanwhile stays as it is) and still under the lease this attempt was claimed
    with: once that lease lapsed and another worker claimed the delivery again (a new lease_until),
    or a manual retry made it due afresh (NULL), the late outcome must not clear the newer lease and
    let a third worker send it while the second still is. 0 when it no longer applies."""
    sets = ", ".join(f"{name} = :{name}" for name in fields)
    return await conn.execute(
        f"""UPDATE webhook_deliveries SET {sets}
            WHERE id = :id AND status = 'pending' AND lease_until = :claimed_lease""",
        dict(fields, id=delivery_id, claimed_lease=lease_until))


async def make_due_now(conn: Conn, delivery_id: str, *, final_attempt: int, at: str) -> None:
    await conn.execute(
        """UPDATE webhook_deliveries SET status = 'pending', next_attempt_at = :at, lease_until = NULL,
               final_attempt = :final_attempt, updated_at = :at
           WHERE id = :id""",
        {"id": delivery_id, "at": at, "final_attempt": final_attempt},
    )


async def insert_attempts(conn: Conn, attempts: list[Attempt]) -> None:
    await insert_rows(conn, "webhook_attempts", ATTEMPT_COLUMNS, attempts)


async def select_attempts(conn: Conn, delivery_id: str) -> list[Attempt]:
    rows = await conn.fetch_all(
        f"SELECT {ATTEMPT_COLUMNS} FROM webhook_attempts WHERE delivery_id = :id ORDER BY attempted_at, id",
        {"id": delivery_id},
    )
    return [Attempt(**r) for r in rows]


async def retire_app_endpoint(conn: Conn, installation_id: str, at: str) -> None:
    await conn.execute(
        """UPDATE webhook_endpoints SET status = 'retired', updated_at = :at
           WHERE installation_id = :id AND owner = 'app' AND status = 'enabled'""", {"id": installation_id, "at": at})


async def count_failed_deliveries_by_day(conn: Conn, merchant_id: str, since: str, until: str) -> list[dict]:
    """The console's Overview: per UTC day an event was sent, the deliveries to the merchant's own endpoints
    (the ones its Webhooks page lists) that failed: given up, or retrying after a failed attempt. The
    condition is written exactly as the partial index webhook_deliveries_failing's (migration 0018), so
    both engines read only the failing rows of the range, never every delivery."""
    return await conn.fetch_all(
        """SELECT substr(d.created_at, 1, 10) AS day, COUNT(*) AS n
           FROM webhook_deliveries d JOIN webhook_endpoints e ON e.id = d.endpoint_id
           WHERE d.merchant_id = :m AND d.created_at >= :since AND d.created_at < :until
             AND (d.status = 'failed' OR (d.status = 'pending' AND d.attempts > 0))
             AND e.owner = 'merchant'
           GROUP BY substr(d.created_at, 1, 10)""",
        {"m": merchant_id, "since": since, "until": until})


async def select_deliveries_of_events(conn: Conn, merchant_id: str, event_ids: list[str],
                                      limit: int) -> list[tuple[Delivery, dict[str, Any]]]:
    """The console's order timeline (docs/api.md 15): the merchant's deliveries of these events, oldest
    first, at most ``limit``, each with what the page says of its endpoint (``url``, ``owner``, ``app_id``,
    ``status``; never a secret). One query: from the merchant's endpoints (webhook_endpoints_merchant) into
    the deliveries by their unique (endpoint_id, event_id) index, so it reads the rows it shows, never
    every delivery of the merchant."""
    if not event_ids:
        return []
    binds: dict[str, Any] = {f"ev{i}": value for i, value in enumerate(event_ids)}
    names = [name.strip() for name in DELIVERY_COLUMNS.split(",")]
    columns = ", ".join(f"d.{name}" for name in names)
    rows = await conn.fetch_all(
        f"""SELECT {columns}, e.url AS endpoint_url, e.owner AS endpoint_owner, e.app_id AS endpoint_app_id,
                   e.status AS endpoint_status
            FROM webhook_endpoints e JOIN webhook_deliveries d ON d.endpoint_id = e.id
            WHERE e.merchant_id = :merchant_id AND d.merchant_id = :merchant_id
              AND d.event_id IN ({', '.join(':' + name for name in binds)})
            ORDER BY d.created_at, d.id LIMIT :limit""",
        dict(binds, merchant_id=merchant_id, limit=limit))
    return [(Delivery(**{name: row[name] for name in names}),
             {key: row[f"endpoint_{key}"] for key in ("url", "owner", "app_id", "status")}) for row in rows]
