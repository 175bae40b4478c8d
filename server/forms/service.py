"""Form tokens for hosted pages: signed (forged ones fail), bound to one checkout session,
short-lived, and single-use (a replayed one is refused; a double click charges once)."""
from __future__ import annotations

import secrets

from flint import clock
from flint.db import Conn
from flint.errors import FlintError
from flint.forms import store
from flint.runtime import Runtime
from flint.security import FORM_SALT

FORM_MAX_AGE = 2 * 3600


def issue(rt: Runtime, session_id: str) -> str:
    return rt.signer.dumps(FORM_SALT, {"s": session_id, "n": secrets.token_urlsafe(16)})


def check(rt: Runtime, token: str | None, session_id: str) -> str:
    """The token's nonce, if the token is genuine and for this session; else 403."""
    if not token:
        raise FlintError(403, "form_token_missing", "This form is missing its security token.")
    try:
        payload = rt.signer.loads(FORM_SALT, token, FORM_MAX_AGE, kind="form_token")
    except FlintError as error:  # forged or stale: a refused form (403), not an auth challenge
        raise FlintError(403, error.code, error.detail) from None
    if not isinstance(payload, dict) or payload.get("s") != session_id or not isinstance(payload.get("n"), str):
        raise FlintError(403, "form_token_invalid", "This form's security token is not valid.")
    return payload["n"]


async def spend(conn: Conn, nonce: str, session_id: str) -> dict | None:
    """Spend the nonce. None when fresh; the earlier use (with where it ended) when replayed."""
    if await store.consume_nonce(conn, nonce, session_id, clock.now_iso()):
        return None
    return await store.select_nonce(conn, nonce) or {}


async def purge_spent(rt: Runtime) -> int:
    """Sweeper step: a spent nonce only matters while its token could still be presented."""
    async with rt.db.transaction() as conn:
        return await store.delete_older_than(conn, clock.later_iso(-FORM_MAX_AGE))


async def spend_token(rt: Runtime, token: str | None, subject_id: str) -> tuple[str, dict | None]:
    """Check a posted form's token and spend its nonce: (nonce, None) when fresh; (nonce, the earlier
    use, with where it ended) when the same form comes again."""
    nonce = check(rt, token, subject_id)
    async with rt.db.transaction() as conn:
        return nonce, await spend(conn, nonce, subject_id)


async def remember(rt: Runtime, nonce: str, outcome_url: str) -> None:
    async with rt.db.transaction() as conn:
        await store.record_outcome(conn, nonce, outcome_url)
