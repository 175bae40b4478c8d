"""Time in one place: UTC, RFC 3339 strings with microseconds so they sort as text.

Every part of Flint asks this module for the time, so a process's clock can be moved forward in one
place: tests (``advance``), and in development the test clock endpoint (POST /v1/test_helpers/
advance_clock), so that session expiry, drop-off, recovery links and webhook retries can be tested in
milliseconds. It never moves backwards, and production never moves it (the endpoint is 404 there)."""
from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

_offset = timedelta(0)  # how far this process's clock was moved forward


def now() -> datetime:
    return datetime.now(timezone.utc) + _offset


def advance(seconds: float) -> timedelta:
    """Moves this process's clock forward by ``seconds`` (never backwards); returns the total offset."""
    global _offset
    if not seconds >= 0:  # also refuses NaN
        raise ValueError("the clock only moves forward")
    _offset += timedelta(seconds=seconds)
    return _offset


def wall_timestamp() -> int:
    """Unix seconds by the machine's own clock, which the test clock never moves: the time a message is
    sent (Standard Webhooks' webhook-timestamp), which its receiver checks against its own clock. Signed
    with the moved clock, every webhook after an advance of more than 5 minutes would be refused."""
    return int(time.time())


def offset() -> timedelta:
    return _offset


def iso(moment: datetime) -> str:
    """The stored and shown form: UTC, microseconds, "Z" (2026-12-05T01:12:40.199199Z). isoformat is
    C-fast where strftime is not, and it is called several times per request."""
    return moment.astimezone(timezone.utc).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def parse(text: str) -> datetime:
    return datetime.fromisoformat(text)  # 3.11 reads the trailing Z as UTC (and is C-fast)


def now_iso() -> str:
    return iso(now())


def later_iso(seconds: float) -> str:
    return iso(now() + timedelta(seconds=seconds))


def public(text: str | None) -> str | None:
    """API representation: second precision, trailing Z (RFC 3339)."""
    if text is None:
        return None
    return text[:19] + "Z"
