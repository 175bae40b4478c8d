"""The development test clock (POST /v1/test_helpers/advance_clock): move this process's clock forward,
then run what time moves at once (the sweeper, and the webhook deliveries and mails that came due), so
session expiry, drop-off, recovery links and their emails, and webhook and mail retries take milliseconds in a
merchant's own tests. Development only: production does not even route to it."""
from __future__ import annotations

from typing import Any

from flint import clock
from flint.background import mail_worker, sweeper, webhook_worker
from flint.runtime import Runtime

MAX_SECONDS = 366 * 86400  # a year and a day per call: enough for any expiry Flint has


SETTLE_SECONDS = 5  # how long the background workers' sends in flight may take to finish first


async def advance(rt: Runtime, seconds: float) -> dict[str, Any]:
    # First what already happened: a delivery or mail the background workers just sent has its outcome
    # (and its retry's time) recorded before the clock moves, so a refusal the merchant's test just saw
    # is retried within this advance, not after the next one.
    for worker in [*webhook_worker.RUNNING, *mail_worker.RUNNING]:
        await worker.settle(SETTLE_SECONDS)
    total = clock.advance(seconds)
    swept = await sweeper.sweep_once(rt)
    delivered = await webhook_worker.deliver_due(rt)
    mailed = await mail_worker.send_due(rt)  # after the sweep: a drop-off's recovery email goes now
    return {"object": "test_clock", "now": clock.public(clock.now_iso()), "advanced_by": seconds,
            "offset_seconds": total.total_seconds(), "swept": swept, "webhooks_delivered": delivered,
            "mail_sent": mailed}
