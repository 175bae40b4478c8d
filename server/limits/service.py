"""Card testing limits (docs/api.md 13): the rules every payment attempt passes before it reaches an app's
hook or the processor.

- Per client address: at most ``attempts_per_address`` attempts a minute over all sessions and links,
  counted here (table address_attempts), whatever their outcome.
- Per checkout session and per payment link: at most ``max_failed_attempts`` failed attempts in a
  rolling hour, counted from the payments themselves (payments.store owns them: the confirm path
  counts there and refuses with ``refuse_failed``).

Both are counted in the database, so they hold over any number of processes. A limit of 0 or less
turns that limit off (for load tests; never in production). Framework-free: callers pass the client
address in as data.
"""
from __future__ import annotations

import ipaddress
import math
from datetime import timedelta

from flint import clock
from flint.errors import FlintError
from flint.ids import new_id
from flint.limits import store
from flint.runtime import Runtime

ADDRESS_WINDOW_SECONDS = 60
FAILED_WINDOW_SECONDS = 3600
# Nothing reads an address's attempts after their minute; they go a little later, and carry no card data.
KEEP_ADDRESS_ROWS_SECONDS = 600


def address_key(address: str) -> str:
    """What one client is counted as: an IPv4 address (an IPv4-mapped IPv6 one is its IPv4 address),
    or an IPv6 address's /64, since a single host is routinely given a whole /64 and could otherwise
    use a fresh address per attempt."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address[:64]  # "unknown" (no peer address) or a peer that is no IP (a Unix socket)
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((int(ip) >> 64 << 64, 64)))
    return str(ip)


def seconds_until(at: str, window: int) -> int:
    """Retry-After: whole seconds until a row made ``at`` leaves its ``window`` (at least 1)."""
    left = (clock.parse(at) + timedelta(seconds=window) - clock.now()).total_seconds()
    return max(1, math.ceil(left))


def too_many_attempts(detail: str, retry_after: int) -> FlintError:
    # retry_after in the body too: the card frame (and any client) words its message from it.
    return FlintError(429, "too_many_attempts", detail, headers={"Retry-After": str(retry_after)},
                      extra={"retry_after": retry_after})


def _in(seconds: int) -> str:
    minutes = math.ceil(seconds / 60)
    return f"{minutes} minute{'s' if minutes != 1 else ''}"


async def count_address_attempt(rt: Runtime, address: str) -> str | None:
    """Count one attempt from ``address``, or refuse it (429) if the address is at its limit. Returns
    the counted row's id (``give_back`` takes it back), or None when the limit is off.

    The address's row is locked before its attempts are counted and the new one inserted, so the
    decisions for one address are taken one after another, on every process: of any burst, exactly
    the limit gets through. A refused attempt writes nothing, so it does not count."""
    limit = rt.config.attempts_per_address
    if limit <= 0:
        return None
    key = address_key(address)
    now = clock.now_iso()
    since = clock.iso(clock.parse(now) - timedelta(seconds=ADDRESS_WINDOW_SECONDS))
    attempt_id = new_id("aa")
    async with rt.db.transaction() as conn:
        await store.lock_address(conn, key, now)
        if await store.insert_attempt_within(conn, id=attempt_id, address=key, at=now, since=since, limit=limit):
            return attempt_id
        # Refused. The next attempt may go once enough of these have left their minute to make room.
        counted = await store.count_attempts(conn, key, since)
        oldest = await store.select_attempt_time(conn, key, since, max(0, counted - limit))
    retry_after = seconds_until(oldest or now, ADDRESS_WINDOW_SECONDS)
    raise too_many_attempts(
        f"Too many payment attempts from your network address. Try again in {_in(retry_after)}.", retry_after)


async def give_back(rt: Runtime, attempt_id: str | None) -> None:
    """An attempt counted for its address but then refused by another limit did not happen."""
    if attempt_id is None:
        return
    async with rt.db.transaction() as conn:
        await store.delete_attempt(conn, attempt_id)


def failed_since() -> str:
    """Where the rolling hour of failed attempts starts."""
    return clock.later_iso(-FAILED_WINDOW_SECONDS)


def max_failed(rt: Runtime) -> int | None:
    """The failed attempts a session or link may have in the hour, or None when the limit is off."""
    return rt.config.max_failed_attempts if rt.config.max_failed_attempts > 0 else None


def refuse_failed(what: str, failed: int, making_room: str | None) -> FlintError:
    """The 429 for a checkout session or payment link at its limit. ``making_room``: when the failure
    was made whose hour ending leaves room for one more attempt."""
    retry_after = seconds_until(making_room or clock.now_iso(), FAILED_WINDOW_SECONDS)
    return too_many_attempts(
        f"Too many failed payment attempts for this {what} ({failed} in the last hour). "
        f"Try again in {_in(retry_after)}.", retry_after)


async def purge(rt: Runtime) -> int:
    """Sweeper step: address counts long past their minute."""
    async with rt.db.transaction() as conn:
        return await store.purge(conn, clock.later_iso(-KEEP_ADDRESS_ROWS_SECONDS))
