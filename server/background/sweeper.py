"""The sweeper: the clock-driven side of Flint (expiry, drop-off recovery, lapsed payment
leases, stuck refunds, old idempotency keys and attempt counts). Runs inside ``flint serve`` and in
``flint worker``; every step is safe to run in several processes at once: each item is locked and
re-checked in its own transaction before it changes (on PostgreSQL, ``FOR UPDATE SKIP LOCKED``, so
sweepers split the work instead of waiting on each other), and the purges are plain DELETEs."""
from __future__ import annotations

import asyncio
import logging

from flint.accounts import service as accounts
from flint.actors import SYSTEM
from flint.closing import service as closing
from flint.collect import capture
from flint.collect import service as collect
from flint.forms import service as forms
from flint.idempotency import service as idempotency
from flint.limits import service as limits
from flint.links import recovery
from flint.refunds import service as refunds
from flint.runtime import Runtime

log = logging.getLogger("flint.background.sweeper")


async def sweep_once(rt: Runtime) -> dict[str, int]:
    done: dict[str, int] = {}
    steps = (
        ("sessions_expired", lambda: closing.sweep_expired(rt, SYSTEM)),
        ("dropoffs_recovered", lambda: recovery.sweep_dropped_off(rt, SYSTEM)),
        ("attempts_recovered", lambda: collect.recover_lapsed_attempts(rt)),
        # Authorizations (docs/api.md 17): a capture or void whose outcome is unknown is asked again; those
        # not captured within FLINT_AUTHORIZATION_TTL are voided.
        ("captures_redriven", lambda: capture.redrive_claims(rt, older_than=rt.config.payment_lease_seconds)),
        ("authorizations_expired", lambda: capture.expire_authorizations(rt)),
        ("refunds_redriven", lambda: refunds.redrive_stale(rt, SYSTEM, older_than=rt.config.payment_lease_seconds)),
        ("idempotency_keys_purged", lambda: idempotency.purge_expired(rt)),
        ("form_nonces_purged", lambda: forms.purge_spent(rt)),
        ("sign_in_records_purged", lambda: accounts.purge(rt)),
        ("address_attempts_purged", lambda: limits.purge(rt)),
    )
    for name, step in steps:
        try:
            done[name] = await step()
        except Exception:  # one failing step must not stop the others, nor the loop
            log.exception("sweep step failed", extra={"step": name})
            done[name] = 0
    return done


async def run(rt: Runtime) -> None:
    while True:
        counts = await sweep_once(rt)
        if any(counts.values()):
            log.info("sweep", extra=counts)
        await asyncio.sleep(rt.config.sweep_interval)
