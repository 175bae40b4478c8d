from __future__ import annotations

from dataclasses import dataclass

RUNNING, DONE = "running", "done"


@dataclass
class IdempotencyKey:
    """One caller's Idempotency-Key: the request it was first used with (a fingerprint), and once that
    request ran, its response (sealed: it may hold a secret shown once)."""
    scope: str  # whose key: merchant:..., app:...:..., session:...
    idem_key: str
    request_hash: str
    state: str  # running | done
    locked_until: str | None
    response_status: int | None
    response_type: str | None
    response_body: str | None
    created_at: str
