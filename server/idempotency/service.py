"""Idempotency-Key semantics (draft-ietf-httpapi-idempotency-key-header-06, as Stripe does it).

* Same key + same request, completed → the stored response, byte for byte.
* Same key + different request → 422 ``idempotency_key_reused``.
* Same key while the first is still running → 409 ``idempotency_key_in_use`` + Retry-After.
* A request rejected before it started (malformed, unauthenticated) stores nothing, so the
  client can fix it and retry with the same key.
Keys are scoped to the caller (merchant, app or buyer session) and kept for 7 days.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from flint import clock, jsonsafe
from flint.errors import FlintError, invalid
from flint.idempotency import store
from flint.idempotency.models import DONE
from flint.runtime import Runtime

MAX_KEY_LENGTH = 255
# Responses that mean "the request never started": not worth remembering.
NOT_STORED = {400, 401, 403, 413, 415, 429}
# Answers about a passing state, not about this request: replaying them for 7 days would keep
# refusing a request that would now succeed (Stripe does not store concurrency conflicts either).
# Answers that say "not now", never stored: a retry with the same key must run again. Includes
# concurrent_update (PostgreSQL: another process changed the same row at the same moment).
TRANSIENT_CODES = {"payment_in_progress", "processor_unavailable", "concurrent_update", "database_unavailable"}


@dataclass(frozen=True)
class Replay:
    status: int
    content_type: str
    body: str


def parse_key(header: str) -> str:
    """Accept the draft's sf-string form ("abc") and Stripe's bare form (abc)."""
    key = header.strip()
    if len(key) >= 2 and key[0] == key[-1] == '"':
        key = key[1:-1]
    if not 1 <= len(key) <= MAX_KEY_LENGTH or not key.isprintable() or not key.strip():
        raise invalid("idempotency_key_invalid",
                      f"Idempotency-Key must be 1-{MAX_KEY_LENGTH} printable characters.", "Idempotency-Key")
    return key


def fingerprint(method: str, path: str, body: bytes) -> str:
    # Runs before the route reads the body, on anything a client sends: a body that does not parse
    # (deeply nested, not UTF-8, ...) is fingerprinted as its bytes, and the route then refuses it.
    try:
        canonical = json.dumps(jsonsafe.loads(body), sort_keys=True, separators=(",", ":")).encode() if body else b""
    except ValueError:
        canonical = body
    return hashlib.sha256(method.encode() + b" " + path.encode() + b"\n" + canonical).hexdigest()


async def begin(rt: Runtime, scope: str, key: str, request_hash: str) -> Replay | None:
    """Claim the key, or return the stored response to replay. Raises on conflicts.

    Safe with several processes on one PostgreSQL database: the INSERT ... ON CONFLICT decides who
    creates the record (a second one waits for the first's commit, then finds it), and a record
    found is read ``FOR UPDATE``, so only one process can restart an expired one or take over one
    whose lock lapsed; the others then see it running (409) or done (the stored response)."""
    now = clock.now_iso()
    locked_until = clock.later_iso(rt.config.idempotency_lock_seconds)
    expired_before = clock.later_iso(-rt.config.idempotency_ttl_seconds)
    for _ in range(3):
        async with rt.db.transaction() as conn:
            if await store.insert_key(conn, scope, key, request_hash, locked_until, now):
                return None
            row = await store.select_key(conn, scope, key, for_update=True)
            if row is None:
                # Deleted since the INSERT found it (its request ended without storing an answer, or
                # the sweeper purged it): on PostgreSQL that can happen in between. Claim it again.
                continue
            if row.created_at < expired_before:
                # Expired (older than 7 days) but not yet swept: start afresh.
                if await store.restart_key(conn, scope, key, request_hash, locked_until, now, expired_before):
                    return None
                continue
            if row.request_hash != request_hash:
                raise FlintError(422, "idempotency_key_reused",
                                 "This Idempotency-Key was used with a different request.")
            if row.state == DONE:
                assert row.response_status is not None and row.response_type is not None
                return Replay(row.response_status, row.response_type, rt.secrets.open(row.response_body or ""))
            if await store.relock_key(conn, scope, key, locked_until, now):
                return None  # the first attempt died mid-way; this one takes over
            break
    raise FlintError(409, "idempotency_key_in_use",
                     "A request with this Idempotency-Key is still being processed.",
                     headers={"Retry-After": "1"})


def _transient(status: int, content_type: str, body: str) -> bool:
    if status not in (409, 503) or "problem+json" not in content_type:
        return False
    try:
        return json.loads(body).get("code") in TRANSIENT_CODES
    except ValueError:
        return False


async def finish(rt: Runtime, scope: str, key: str, status: int, content_type: str, body: str) -> None:
    """Store the response for replay. Like Stripe, a 500 is stored too: the request ran, and
    whatever it committed must not run a second time under the same key."""
    async with rt.db.transaction() as conn:
        if status in NOT_STORED or _transient(status, content_type, body):
            await store.delete_key(conn, scope, key)
        else:
            # Sealed: a stored answer may carry a secret shown once (a new API key, a client or
            # webhook secret); at rest it is as unreadable as those secrets themselves are.
            await store.complete_key(conn, scope, key, status, content_type, rt.secrets.seal(body))


async def purge_expired(rt: Runtime) -> int:
    async with rt.db.transaction() as conn:
        return await store.delete_older_than(conn, clock.later_iso(-rt.config.idempotency_ttl_seconds))
