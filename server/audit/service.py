"""The audit trail (docs/api.md 15): durable records of the actions on a merchant's keys, settings,
webhook secrets and deliveries, app updates and team that emit no event, each with its actor as events
carry it (``{type: "staff" | "merchant" | "app", id}``).

Why rows here rather than events: events are public (they go to webhooks and GET /v1/events, and their
types are a contract apps and merchants build on); a key created or a teammate removed is the merchant's
own housekeeping, and the secret-rolling and retrying of webhooks sit below events (flint.events fans
out through flint.webhooks), so they could not record one anyway.

``record`` runs inside the caller's transaction: the action and its row commit together or not at all.
``changes`` says what changed in a few fields, never a secret, a key's value or a token. Framework-free,
below every domain that records (webhooks, merchants, staff).
"""
from __future__ import annotations

import json
from typing import Any

from flint import clock
from flint.actors import Actor
from flint.audit import store
from flint.audit.models import ACTIONS, Entry
from flint.db import Conn
from flint.ids import new_id
from flint.runtime import Runtime

MAX_PAGE = 100
# Names a change may never carry, however a caller words it: secrets and key material stay out.
_SECRET_WORDS = ("secret", "token", "password", "key_hash", "hash")


def _check(changes: dict[str, Any]) -> str:
    for name in changes:
        if any(word in name for word in _SECRET_WORDS):
            raise ValueError(f"an audit entry never carries a secret ({name!r})")
    return json.dumps(changes, separators=(",", ":"), sort_keys=True)


async def record(conn: Conn, *, merchant_id: str, actor: Actor, action: str, object_id: str | None,
                 changes: dict[str, Any] | None = None) -> Entry:
    """One action of ``actor`` on the merchant's ``object_id``, in the caller's transaction. An unknown
    ``action`` is a programming error (the Activity list names each one in words)."""
    assert action in ACTIONS, action
    entry = Entry(id=new_id("aud"), merchant_id=merchant_id, actor_type=actor.type, actor_id=actor.id,
                  action=action, object_id=object_id, changes=_check(changes or {}), created_at=clock.now_iso())
    await store.insert_entry(conn, entry)
    return entry


async def list_entries(rt: Runtime, merchant_id: str, limit: int,
                       starting_after: str | None = None) -> tuple[list[Entry], bool]:
    """A page of the merchant's trail, newest first, and whether older entries follow. Who may read it
    is the caller's to check (the Team page: staff.service.activity, owners only)."""
    async with rt.db.read() as conn:
        return await store.select_entries_page(conn, merchant_id, max(1, min(limit, MAX_PAGE)), starting_after)
