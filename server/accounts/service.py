"""Sign-in for people (the console, the OAuth consent page): a person is a staff member of one merchant
(flint.staff), whose password is checked with Argon2 (security.password_matches); server-side sessions
behind a random cookie stored only as its digest, each naming the member; failed sign-ins
rate-limited per email and per client address.

Framework-free: the routes (flint.web.accounts) read and write the cookie; this module decides.
"""
from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import NamedTuple

from flint import clock
from flint.accounts import store
from flint.errors import FlintError
from flint.i18n import N_
from flint.ids import new_id, new_secret
from flint.merchants import store as merchant_store
from flint.merchants.models import Merchant
from flint.runtime import Runtime
from flint.security import hash_password, hash_secret, password_matches
from flint.staff import service as staff_service
from flint.staff import store as staff_store
from flint.staff.models import Staff

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
    staff: Staff  # who signed in, with their role


class Current(NamedTuple):
    """Who a live session cookie stands for. A tuple whose first two items are (session id, merchant),
    as ``current`` returned before staff, so callers that index it keep working."""
    session_id: str
    merchant: Merchant
    staff: Staff

    @property
    def role(self) -> str:
        return self.staff.role


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


async def _member_for(rt: Runtime, email: str, password: str) -> Staff | None:
    """The member these credentials sign in, or None. One email may be staff at several merchants: the
    oldest live membership is the one signed in (its password is the one checked). An email that is no
    member anywhere but is a merchant's own (a merchant created before its owner was, see
    staff.service.ensure_owner) becomes that merchant's owner here, once its password matches."""
    address = staff_service.normalise_email(email)
    async with rt.db.read() as conn:
        members = await staff_store.select_live_members_by_email(conn, address)
        merchant = None if members else await merchant_store.select_merchant_by_email(conn, address)
    member = members[0] if members else None
    stored = (member.password_hash if member is not None
              else merchant.password_hash if merchant is not None else _DUMMY_HASH)
    # Argon2 costs tens of milliseconds of CPU: off the event loop. Exactly one check on every path,
    # so a wrong email takes as long as a wrong password.
    if not await asyncio.to_thread(password_matches, password, stored):
        return None
    if member is None and merchant is not None:
        async with rt.db.transaction() as conn:
            member = await staff_service.ensure_owner(conn, merchant)  # None: removed from its own team
    return member


async def sign_in(rt: Runtime, email: str, password: str, address: str) -> SignedIn:
    """A session for the staff member whose email and password these are; 401 otherwise (the same
    answer whether the email or the password was wrong); 429 once too many attempts failed."""
    counted = await _count_attempt(rt, email, address)
    member = await _member_for(rt, email, password)
    if member is None:
        raise FlintError(401, "sign_in_failed", N_("That email and password do not match an account."))
    by_email, _ = _keys(email, address)
    return await start_session(rt, member, clear=(by_email, counted[1]))


async def start_session(rt: Runtime, member: Staff, *, clear: tuple[str, str] | None = None) -> SignedIn:
    """A new web session for ``member`` (sign-in, or someone who just accepted an invitation and chose
    their password: staff.service.accept_invitation)."""
    now = clock.now_iso()
    token = new_secret("fws_")
    session_id = new_id("ws")
    async with rt.db.transaction() as conn:
        if clear is not None:
            # A success clears the email's failures (this attempt's row with them) and takes back its
            # address row: it was counted in advance, and it did not fail.
            await store.clear_failures(conn, clear[0])
            await store.delete_failures(conn, [clear[1]])
        merchant = await merchant_store.select_merchant(conn, member.merchant_id)
        await store.insert_session(conn, id=session_id, merchant_id=member.merchant_id, staff_id=member.id,
                                   token_hash=hash_secret(token), created_at=now,
                                   expires_at=clock.later_iso(SESSION_SECONDS))
    assert merchant is not None
    return SignedIn(session_id, merchant, token, member)


async def current(rt: Runtime, token: str | None) -> Current | None:
    """Who a cookie stands for, if its session is live and its member still on the team: (web session
    id, merchant, staff member with their role)."""
    if not token or len(token) > 128:
        return None
    async with rt.db.read() as conn:
        row = await store.select_live_session(conn, hash_secret(token), clock.now_iso())
        if row is None or row.staff_id is None:  # (a session from before staff: sign in again)
            return None
        member = await staff_store.select_member(conn, row.merchant_id, row.staff_id)
        if member is None or not member.live:  # removal revokes sessions too; this is the backstop
            return None
        merchant = await merchant_store.select_merchant(conn, row.merchant_id)
    return Current(row.id, merchant, member) if merchant is not None else None


async def sign_out(rt: Runtime, session_id: str) -> None:
    async with rt.db.transaction() as conn:
        await store.revoke_session(conn, session_id, clock.now_iso())


async def purge(rt: Runtime) -> int:
    """Sweeper step: failures older than the window, sessions past their expiry."""
    async with rt.db.transaction() as conn:
        return await store.purge(conn, clock.later_iso(-max(WINDOW_SECONDS, 60)))
