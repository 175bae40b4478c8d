"""Merchant sign-in for people (the OAuth consent page, later a dashboard): passwords checked with
Argon2 (security.password_matches), server-side sessions behind a random cookie stored only as its
digest, failed sign-ins rate-limited per email and per client address.

Framework-free: the routes (routes.py) read and write the cookie; this module decides.
"""
from __future__ import annotations

import asyncio
from dataclasses import dataclass

from flint import clock
from flint.accounts import store
from flint.errors import FlintError
from flint.i18n import N_
from flint.ids import new_id, new_secret
from flint.merchants import store as merchant_store
from flint.merchants.models import Merchant
from flint.runtime import Runtime
from flint.security import hash_password, hash_secret, password_matches

SESSION_SECONDS = 12 * 3600
# Failed sign-ins allowed per window: per email (guessing one account's password) and per client
# address (trying many accounts); a success clears the email's count.
WINDOW_SECONDS = 15 * 60
MAX_FAILURES_PER_EMAIL = 5
MAX_FAILURES_PER_ADDRESS = 20

# Checked when the email is unknown, so a wrong email takes as long as a wrong password (no account
# enumeration by timing).
_DUMMY_HASH = hash_password("flint-no-such-account-password")


@dataclass(frozen=True)
class SignedIn:
    session_id: str
    merchant: Merchant
    token: str  # the cookie's value: shown to the browser once, stored as its digest


def _keys(email: str, address: str) -> tuple[str, str]:
    return f"email:{email.strip().lower()}", f"ip:{address}"


async def _count_attempt(rt: Runtime, email: str, address: str) -> tuple[str, str]:
    """Count this attempt as a failure *before* its password is checked, then refuse it if that puts
    the email or the address over its limit. The counting is race-free across processes: the rows
    are committed before the count is read, so of any number of concurrent attempts the k-th to
    commit sees at least k rows, and no more than the limit get through to a password check (a
    check-then-insert would let every one of a burst pass while the count is still low). Returns the
    two rows' ids: a success takes them back, a failure keeps them."""
    by_email, by_address = _keys(email, address)
    ids = (new_id("lf"), new_id("lf"))
    now = clock.now_iso()
    async with rt.db.transaction() as conn:
        await store.insert_failure(conn, id=ids[0], key=by_email, at=now)
        await store.insert_failure(conn, id=ids[1], key=by_address, at=now)
    since = clock.later_iso(-WINDOW_SECONDS)
    async with rt.db.read() as conn:
        email_failures = await store.count_failures(conn, by_email, since)
        address_failures = await store.count_failures(conn, by_address, since)
    # This attempt is one of the rows counted: the limit is exceeded when there are more than MAX.
    if email_failures > MAX_FAILURES_PER_EMAIL or address_failures > MAX_FAILURES_PER_ADDRESS:
        async with rt.db.transaction() as conn:  # a refused attempt is not a failed one (as before)
            await store.delete_failures(conn, list(ids))
        raise FlintError(429, "too_many_sign_in_attempts",
                         N_("Too many failed sign-ins. Wait a few minutes and try again."),
                         headers={"Retry-After": str(WINDOW_SECONDS)})
    return ids


async def sign_in(rt: Runtime, email: str, password: str, address: str) -> SignedIn:
    """A session for the merchant whose email and password these are; 401 otherwise (the same
    answer whether the email or the password was wrong); 429 once too many attempts failed."""
    counted = await _count_attempt(rt, email, address)
    async with rt.db.read() as conn:  # emails are stored lower-cased (merchants.service.create_merchant)
        merchant = await merchant_store.select_merchant_by_email(conn, email.strip().lower())
    # Argon2 costs tens of milliseconds of CPU: off the event loop.
    stored = merchant.password_hash if merchant is not None else _DUMMY_HASH
    matches = await asyncio.to_thread(password_matches, password, stored)
    if merchant is None or not matches:
        raise FlintError(401, "sign_in_failed", N_("That email and password do not match an account."))
    by_email, _ = _keys(email, address)
    now = clock.now_iso()
    token = new_secret("fws_")
    session_id = new_id("ws")
    async with rt.db.transaction() as conn:
        # A success clears the email's failures (this attempt's row with them) and takes back its
        # address row: it was counted in advance, and it did not fail.
        await store.clear_failures(conn, by_email)
        await store.delete_failures(conn, [counted[1]])
        await store.insert_session(conn, id=session_id, merchant_id=merchant.id, token_hash=hash_secret(token),
                                   created_at=now, expires_at=clock.later_iso(SESSION_SECONDS))
    return SignedIn(session_id, merchant, token)


async def current(rt: Runtime, token: str | None) -> tuple[str, Merchant] | None:
    """The (web session id, merchant) a cookie stands for, if it is live."""
    if not token or len(token) > 128:
        return None
    async with rt.db.read() as conn:
        row = await store.select_live_session(conn, hash_secret(token), clock.now_iso())
        if row is None:
            return None
        merchant = await merchant_store.select_merchant(conn, row.merchant_id)
    return (row.id, merchant) if merchant is not None else None


async def sign_out(rt: Runtime, session_id: str) -> None:
    async with rt.db.transaction() as conn:
        await store.revoke_session(conn, session_id, clock.now_iso())


async def purge(rt: Runtime) -> int:
    """Sweeper step: failures older than the window, sessions past their expiry."""
    async with rt.db.transaction() as conn:
        return await store.purge(conn, clock.later_iso(-max(WINDOW_SECONDS, 60)))
