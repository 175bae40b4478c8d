"""Time in one place: UTC, RFC 3339 strings with microseconds so they sort as text."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone


def now() -> datetime:
    return datetime.now(timezone.utc)


def iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


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
