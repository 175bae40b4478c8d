"""Staff and roles (docs/api.md 15): who may act for a merchant in the console, and the team's verbs.

Roles are enforced here, not by hiding links: every console action calls ``require(member,
permission)`` before the service it shares with the API, and records ``actor(member)``. Every team verb
takes the acting member (``by``) and works inside ``by``'s merchant only: another merchant's member or
invitation is a 404, the same as an unknown id. Each team verb is recorded in the audit trail
(flint.audit: ``staff.invited``, ``staff.invitation_revoked``, ``staff.removed``) with ``actor(by)``, in its
own transaction; ``activity`` reads the trail back for owners (the Team page's Activity list).

Framework-free. flint.accounts signs members in (sessions, the sign-in rate limit); this domain sits
below it, and below flint.merchants, whose merchant creation makes its first owner (``ensure_owner``).
"""
from __future__ import annotations

import asyncio
from dataclasses import dataclass

from flint import clock
from flint.actors import Actor
from flint.audit import service as audit
from flint.audit.models import Entry
from flint.db import Conn
from flint.errors import FlintError, conflict, invalid, not_found
from flint.ids import new_id, new_secret
from flint.runtime import Runtime
from flint.security import hash_password, hash_secret
from flint.staff import store
from flint.staff.models import ROLES, Invitation, OwnerSource, Staff, allows

INVITATION_SECONDS = 7 * 24 * 3600
INVITATION_TOKEN_PREFIX = "fsi_"
MIN_PASSWORD = 8
MAX_PASSWORD = 1024  # Argon2 hashes any length; a megabyte "password" would only cost CPU


def normalise_email(email: str) -> str:
    return email.strip().lower()


def _check_email(email: str) -> str:
    address = normalise_email(email)
    local, at, domain = address.partition("@")
    if not at or not local or not domain or len(address) > 254 or any(ch.isspace() for ch in address):
        raise invalid("email_invalid", "Give the person's email address.", "email")
    return address


def _check_role(role: str) -> str:
    if role not in ROLES:
        raise invalid("role_invalid", f"A role is one of {', '.join(ROLES)}.", "role")
    return role


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise invalid("password_too_short", "Passwords need at least 8 characters.", "password")
    if len(password) > MAX_PASSWORD:
        raise invalid("password_too_long", "Passwords have at most 1024 characters.", "password")


def actor(member: Staff) -> Actor:
    """What a console action records on its events: ``{type: "staff", id: "stf_..."}``."""
    return Actor("staff", member.id)


def require(member: Staff, permission: str) -> None:
    """Refuses (403 ``role_forbidden``) what this member's role may not do. An unknown permission is a
    programming error (ValueError), never a quiet refusal."""
    if not allows(member.role, permission) or not member.live:
        raise FlintError(403, "role_forbidden", f"Your role ({member.role}) does not allow this.",
                         extra={"role": member.role, "permission": permission})


async def _acting(conn: Conn, by: Staff, permission: str) -> Staff:
    """``by`` as stored now, inside the transaction about to act: a member removed (or whose role
    changed) since their page was shown acts as what they are now."""
    require(by, permission)
    fresh = await store.select_member(conn, by.merchant_id, by.id)
    if fresh is None or not fresh.live:
        raise FlintError(403, "role_forbidden", "You are no longer a member of this team.",
                         extra={"role": by.role, "permission": permission})
    require(fresh, permission)
    return fresh


async def ensure_owner(conn: Conn, merchant: OwnerSource) -> Staff | None:
    """The merchant's own email and password as its first owner (docs/api.md 15), created if the
    merchant never had a member with that email; call it in the transaction that creates the merchant.
    Idempotent, and safe with two callers at once. Returns the live member with the merchant's email,
    or None when that person was removed from the team (removal is not undone by signing in)."""
    email = normalise_email(merchant.email)
    if not await store.any_member_with_email(conn, merchant.id, email):
        await store.insert_member(conn, Staff(
            id=new_id("stf"), merchant_id=merchant.id, email=email, role="owner",
            password_hash=merchant.password_hash, created_at=merchant.created_at, removed_at=None))
    return await store.select_member_by_email(conn, merchant.id, email)


async def get_member(rt: Runtime, by: Staff, staff_id: str) -> Staff:
    require(by, "team:read")
    async with rt.db.read() as conn:
        member = await store.select_member(conn, by.merchant_id, staff_id)
    if member is None or not member.live:
        raise not_found("staff", staff_id)
    return member


async def list_team(rt: Runtime, by: Staff) -> list[Staff]:
    """The merchant's live members, the oldest first."""
    require(by, "team:read")
    async with rt.db.read() as conn:
        return await store.select_team(conn, by.merchant_id)


async def list_invitations(rt: Runtime, by: Staff) -> list[Invitation]:
    """The merchant's invitations still waiting to be accepted (neither used, revoked nor expired)."""
    require(by, "team:read")
    async with rt.db.read() as conn:
        return await store.select_pending_invitations(conn, by.merchant_id, clock.now_iso())


async def invite(rt: Runtime, by: Staff, email: str, role: str) -> tuple[Invitation, str]:
    """An invitation to ``by``'s merchant with ``role``, and its link token: random, shown only here
    (stored as its digest), single use, valid for seven days. Inviting an email again replaces its
    pending invitation (the older link stops working); a live member's email is 409."""
    require(by, "team:write")
    address, role = _check_email(email), _check_role(role)
    token = new_secret(INVITATION_TOKEN_PREFIX)
    now = clock.now_iso()
    invitation = Invitation(
        id=new_id("inv"), merchant_id=by.merchant_id, email=address, role=role, token_hash=hash_secret(token),
        invited_by=by.id, created_at=now, expires_at=clock.later_iso(INVITATION_SECONDS), accepted_at=None,
        revoked_at=None, staff_id=None)
    async with rt.db.transaction() as conn:
        await _acting(conn, by, "team:write")
        if await store.select_member_by_email(conn, by.merchant_id, address) is not None:
            raise conflict("already_a_member", "This person is already a member of the team.")
        await store.revoke_pending_invitations(conn, by.merchant_id, at=now, email=address)
        await store.insert_invitation(conn, invitation)
        await audit.record(conn, merchant_id=by.merchant_id, actor=actor(by), action="staff.invited",
                           object_id=invitation.id, changes={"email": address, "role": role})
    return invitation, token


async def revoke_invitation(rt: Runtime, by: Staff, invitation_id: str) -> Invitation:
    require(by, "team:write")
    async with rt.db.transaction() as conn:
        await _acting(conn, by, "team:write")
        if await store.select_invitation(conn, by.merchant_id, invitation_id) is None:
            raise not_found("staff_invitation", invitation_id)
        revoked = await store.revoke_pending_invitations(conn, by.merchant_id, at=clock.now_iso(),
                                                         invitation_id=invitation_id)
        found = await store.select_invitation(conn, by.merchant_id, invitation_id)
        assert found is not None
        if revoked:  # an invitation already used, revoked or replaced changes nothing: nothing to record
            await audit.record(conn, merchant_id=by.merchant_id, actor=actor(by), action="staff.invitation_revoked",
                               object_id=found.id, changes={"email": found.email, "role": found.role})
    return found


def _refuse(invitation: Invitation | None, now: str) -> FlintError | None:
    """Why an invitation link cannot be used, as a distinct code for each reason."""
    if invitation is None:
        return FlintError(404, "invitation_not_found", "This invitation link is not valid.")
    status = invitation.status(now)
    if status == "accepted":
        return FlintError(410, "invitation_used", "This invitation was already used. Sign in instead.")
    if status == "revoked":
        return FlintError(410, "invitation_revoked", "This invitation was withdrawn. Ask for a new one.")
    if status == "expired":
        return FlintError(410, "invitation_expired", "This invitation has expired. Ask for a new one.")
    return None


async def _invitation(rt: Runtime, token: str) -> Invitation:
    if not token or len(token) > 128 or not token.startswith(INVITATION_TOKEN_PREFIX):
        raise FlintError(404, "invitation_not_found", "This invitation link is not valid.")
    async with rt.db.read() as conn:
        invitation = await store.select_invitation_by_token(conn, hash_secret(token))
    refused = _refuse(invitation, clock.now_iso())
    if refused is not None:
        raise refused
    assert invitation is not None
    return invitation


async def invitation_for(rt: Runtime, token: str) -> Invitation:
    """The pending invitation a link stands for (for the page that asks for a password): 404
    ``invitation_not_found``, or 410 ``invitation_used`` / ``invitation_revoked`` / ``invitation_expired``."""
    return await _invitation(rt, token)


async def accept_invitation(rt: Runtime, token: str, password: str) -> Staff:
    """Whoever holds the link sets their password and becomes a member with the invited role. Single
    use: of any number of accepts at once (several processes) exactly one makes the member, the others
    get 410 ``invitation_used``. Errors as ``invitation_for``; 409 ``already_a_member`` when the email
    joined the team meanwhile (the invitation is then left unused)."""
    invitation = await _invitation(rt, token)
    _check_password(password)
    # Argon2 costs tens of milliseconds of CPU: off the event loop, and before the transaction.
    password_hash = await asyncio.to_thread(hash_password, password)
    now = clock.now_iso()
    member = Staff(id=new_id("stf"), merchant_id=invitation.merchant_id, email=invitation.email,
                   role=invitation.role, password_hash=password_hash, created_at=now, removed_at=None)
    async with rt.db.transaction() as conn:
        # The conditional UPDATE decides: one claim wins, the rest see it used (or expired meanwhile).
        if not await store.claim_invitation(conn, invitation.id, now):
            latest = await store.select_invitation(conn, invitation.merchant_id, invitation.id)
            raise _refuse(latest, now) or FlintError(410, "invitation_used", "This invitation was already used.")
        if not await store.insert_member(conn, member):
            raise conflict("already_a_member", "This person is already a member of the team. Sign in instead.")
        await store.set_invitation_member(conn, invitation.id, member.id)
    return member


async def remove(rt: Runtime, by: Staff, staff_id: str) -> Staff:
    """Takes a member off ``by``'s team and ends their web sessions. The last owner stays (409
    ``last_owner``): an owner may remove themselves only while another owner remains."""
    require(by, "team:write")
    now = clock.now_iso()
    async with rt.db.transaction() as conn:
        # The owners are locked first, then the member read: of two removals at once the second waits,
        # then counts what the first left (two owners removing each other must not leave none).
        owners = await store.lock_live_owners(conn, by.merchant_id)
        await _acting(conn, by, "team:write")
        member = await store.select_member(conn, by.merchant_id, staff_id, for_update=True)
        if member is None or not member.live:
            raise not_found("staff", staff_id)
        if member.role == "owner" and owners <= 1:
            raise FlintError(409, "last_owner", "A team keeps at least one owner: invite another owner first.")
        await store.mark_removed(conn, by.merchant_id, staff_id, now)
        await store.revoke_sessions(conn, staff_id, now)
        removed = await store.select_member(conn, by.merchant_id, staff_id)
        assert removed is not None
        await audit.record(conn, merchant_id=by.merchant_id, actor=actor(by), action="staff.removed",
                           object_id=removed.id, changes={"email": removed.email, "role": removed.role})
    return removed


ACTIVITY_PAGE = 25


@dataclass(frozen=True)
class Activity:
    """A page of the merchant's audit trail, each entry's staff actor named by their email while they are
    a member. A removed member is named by their id only: the Team page shows no one who left (their
    email stays in the trail's rows, not on the page)."""
    entries: list[Entry]
    emails: dict[str, str]  # staff id -> email, live members only
    older: str | None  # starting_after cursor of the next (older) page, if any

    def who(self, entry: Entry) -> str:
        if entry.actor_type == "staff":
            return self.emails.get(entry.actor_id or "", f"former member {entry.actor_id}")
        return f"{entry.actor_type} {entry.actor_id}" if entry.actor_id else entry.actor_type


async def activity(rt: Runtime, by: Staff, starting_after: str | None = None,
                   limit: int = ACTIVITY_PAGE) -> Activity:
    """The newest entries of ``by``'s merchant's audit trail (owners: team:read), keyset-paged; a cursor
    that is not one of this merchant's entries gives the first page."""
    require(by, "team:read")
    try:
        entries, more = await audit.list_entries(rt, by.merchant_id, limit, starting_after)
    except FlintError as error:
        if error.code != "starting_after_invalid":
            raise
        entries, more = await audit.list_entries(rt, by.merchant_id, limit, None)
    ids = sorted({e.actor_id for e in entries if e.actor_type == "staff" and e.actor_id})
    emails = {}
    async with rt.db.read() as conn:
        for staff_id in ids:  # a page names a handful of people; the merchant is in every lookup
            member = await store.select_member(conn, by.merchant_id, staff_id)
            if member is not None and member.live:
                emails[member.id] = member.email
    return Activity(entries, emails, entries[-1].id if more and entries else None)
