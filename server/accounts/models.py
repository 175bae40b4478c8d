from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class WebSession:
    """A person signed in on a browser: the cookie's digest finds it (the cookie itself is never kept)."""
    id: str
    merchant_id: str
    staff_id: str | None  # None only for sessions from before staff (migration 0015): signed out
