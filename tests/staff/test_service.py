"""Staff and roles (docs/api.md 15) at the service level, on SQLite and PostgreSQL: what each role may
not do, the team's verbs (invite, accept, remove, list), signing in as a member, the last-owner rule,
removal ending sessions, another merchant's ids, and races between processes."""
from __future__ import annotations

import asyncio
import itertools

import pytest

from flint.accounts import service as accounts
from flint.errors import FlintError
from flint.runtime import Runtime
from flint.staff import service as staff
from flint.staff.models import ALL, PERMISSIONS, ROLES, Staff
from support.factories import make_merchant

PASSWORD = "correct horse battery"  # support.factories.make_merchant's
NEW_PASSWORD = "a password of my own"
_addresses = (f"198.51.100.{i}" for i in itertools.count(1))


@pytest.fixture
def other(second_rt: Runtime) -> Runtime:
    return second_rt


async def _owner(rt: Runtime):
    merchant, _ = await make_merchant(rt)
    async with rt.db.transaction() as conn:
        owner = await staff.ensure_owner(conn, merchant)
    assert owner is not None
    return merchant, owner


async def _member(rt: Runtime, owner: Staff, role: str, email: str | None = None) -> Staff:
    _, token = await staff.invite(rt, owner, email or f"{role}-{next(_addresses)}@team.example", role)
    return await staff.accept_invitation(rt, token, NEW_PASSWORD)


async def _refused(call, status: int, code: str) -> FlintError:
    with pytest.raises(FlintError) as refused:
        await call
    assert (refused.value.status, refused.value.code) == (status, code), refused.value.detail
    return refused.value


# --- roles -----------------------------------------------------------------------------------------

# What docs/api.md 15 says each role may not do, written out rather than derived from the table.
REFUSALS = [
    ("developer", "team:read"), ("developer", "team:write"),
    ("support", "team:read"), ("support", "team:write"),
    ("support", "api_keys:read"), ("support", "api_keys:write"),  # secrets: support gets 403 on API keys
    ("support", "orders:redact"),
    ("support", "webhooks:write"),  # retry, add endpoint, roll secret
    ("support", "apps:write"),  # approve update, uninstall
    ("support", "settings:write"),
]
ALLOWED = [
    *[("owner", permission) for permission in sorted(ALL)],
    *[("developer", p) for p in sorted(ALL - {"team:read", "team:write"})],
    ("support", "overview:read"), ("support", "orders:read"), ("support", "refunds:write"),
    ("support", "payments:capture"), ("support", "payments:void"),  # as refunds (docs/api.md 15)
    ("support", "orders:cancel"), ("support", "links:read"), ("support", "links:write"),
    ("support", "webhooks:read"), ("support", "apps:read"), ("support", "settings:read"),
]


def _someone(role: str) -> Staff:
    return Staff(id="stf_x", merchant_id="mer_x", email="x@team.example", role=role, password_hash="-",
                 created_at="2026-01-01T00:00:00.000000Z", removed_at=None)


@pytest.mark.parametrize("role, permission", REFUSALS)
def test_a_role_is_refused_what_it_may_not_do(role, permission):
    with pytest.raises(FlintError) as refused:
        staff.require(_someone(role), permission)
    assert refused.value.status == 403 and refused.value.code == "role_forbidden"
    assert refused.value.extra == {"role": role, "permission": permission}


@pytest.mark.parametrize("role, permission", ALLOWED)
def test_a_role_may_do_what_it_is_given(role, permission):
    staff.require(_someone(role), permission)


def test_the_table_is_exactly_what_the_roles_are_given_and_refused():
    for role in ROLES:
        refused = {p for r, p in REFUSALS if r == role}
        allowed = {p for r, p in ALLOWED if r == role}
        assert refused | allowed == ALL and not refused & allowed, role
        assert PERMISSIONS[role] == allowed, role


def test_an_unknown_permission_is_a_programming_error_and_a_removed_member_may_do_nothing():
    with pytest.raises(ValueError):
        staff.require(_someone("owner"), "orders:reed")
    gone = Staff(**{**_someone("owner").__dict__, "removed_at": "2026-01-02T00:00:00.000000Z"})
    with pytest.raises(FlintError) as refused:
        staff.require(gone, "orders:read")
    assert refused.value.code == "role_forbidden"


def test_a_members_actions_are_recorded_as_staff():
    assert staff.actor(_someone("support")).to_dict() == {"type": "staff", "id": "stf_x"}


@pytest.mark.parametrize("role", ["developer", "support"])
async def test_only_an_owner_invites_removes_and_sees_the_team(rt, role):
    _, owner = await _owner(rt)
    member = await _member(rt, owner, role)
    await _refused(staff.invite(rt, member, "new@team.example", "support"), 403, "role_forbidden")
    await _refused(staff.remove(rt, member, owner.id), 403, "role_forbidden")
    await _refused(staff.list_team(rt, member), 403, "role_forbidden")
    await _refused(staff.list_invitations(rt, member), 403, "role_forbidden")
    await _refused(staff.get_member(rt, member, owner.id), 403, "role_forbidden")
    assert [m.id for m in await staff.list_team(rt, owner)] == [owner.id, member.id]


# --- the first owner --------------------------------------------------------------------------------

async def test_the_merchants_own_email_and_password_are_its_first_owner(rt):
    merchant, _ = await make_merchant(rt)
    # Signing in with the merchant's credentials makes its owner when merchant creation did not.
    signed = await accounts.sign_in(rt, merchant.email.upper(), PASSWORD, next(_addresses))
    assert signed.staff.role == "owner" and signed.staff.email == merchant.email
    assert signed.staff.merchant_id == merchant.id and signed.merchant.id == merchant.id
    async with rt.db.transaction() as conn:  # idempotent
        assert await staff.ensure_owner(conn, merchant) == signed.staff
    assert await staff.list_team(rt, signed.staff) == [signed.staff]
    found = await accounts.current(rt, signed.token)
    assert found.staff == signed.staff and found.role == "owner" and found.merchant.id == merchant.id
    # Its first two items are still the (session id, merchant) pair of before staff, for its callers.
    assert (found[0], found[1].id) == (signed.session_id, merchant.id)


async def test_two_first_sign_ins_at_once_make_one_owner(rt, other):
    merchant, _ = await make_merchant(rt)
    done = await asyncio.gather(*(accounts.sign_in(runtime, merchant.email, PASSWORD, next(_addresses))
                                  for runtime in (rt, other, rt, other)))
    assert len({signed.staff.id for signed in done}) == 1
    async with rt.db.read() as conn:
        rows = await conn.fetch_all("SELECT id FROM staff WHERE merchant_id = :m", {"m": merchant.id})
    assert len(rows) == 1


async def test_a_removed_owner_cannot_come_back_through_the_merchants_password(rt):
    merchant, owner = await _owner(rt)
    second = await _member(rt, owner, "owner")
    await staff.remove(rt, second, owner.id)
    await _refused(accounts.sign_in(rt, merchant.email, PASSWORD, next(_addresses)), 401, "sign_in_failed")
    assert [m.id for m in await staff.list_team(rt, second)] == [second.id]


# --- invite, accept, sign in ------------------------------------------------------------------------

async def test_an_invited_person_accepts_sets_a_password_and_signs_in_with_the_role(rt):
    merchant, owner = await _owner(rt)
    invitation, token = await staff.invite(rt, owner, "  Helper@Team.Example ", "support")
    assert invitation.email == "helper@team.example" and invitation.role == "support"
    assert token.startswith("fsi_") and token not in invitation.token_hash
    async with rt.db.read() as conn:  # only the digest is kept
        stored = await conn.fetch_all("SELECT token_hash FROM staff_invitations WHERE id = :id", {"id": invitation.id})
    assert stored and all(token not in row["token_hash"] for row in stored)
    assert [i.id for i in await staff.list_invitations(rt, owner)] == [invitation.id]
    assert (await staff.invitation_for(rt, token)).id == invitation.id

    member = await staff.accept_invitation(rt, token, NEW_PASSWORD)
    assert (member.merchant_id, member.email, member.role) == (merchant.id, "helper@team.example", "support")
    assert await staff.list_invitations(rt, owner) == []
    assert await staff.get_member(rt, owner, member.id) == member

    signed = await accounts.sign_in(rt, "HELPER@team.example", NEW_PASSWORD, next(_addresses))
    assert signed.staff == member and signed.merchant.id == merchant.id
    found = await accounts.current(rt, signed.token)
    assert found.role == "support" and found.staff.id == member.id
    async with rt.db.read() as conn:
        row = await conn.fetch_one("SELECT staff_id FROM web_sessions WHERE id = :id", {"id": signed.session_id})
    assert row["staff_id"] == member.id
    # The merchant's own password is not theirs.
    await _refused(accounts.sign_in(rt, "helper@team.example", PASSWORD, next(_addresses)), 401, "sign_in_failed")


async def test_someone_who_just_joined_gets_a_session_without_typing_the_password_again(rt):
    _, owner = await _owner(rt)
    _, token = await staff.invite(rt, owner, "joined@team.example", "developer")
    member = await staff.accept_invitation(rt, token, NEW_PASSWORD)
    signed = await accounts.start_session(rt, member)
    assert (await accounts.current(rt, signed.token)).role == "developer"


async def test_an_invitation_link_works_once(rt):
    _, owner = await _owner(rt)
    _, token = await staff.invite(rt, owner, "once@team.example", "support")
    await staff.accept_invitation(rt, token, NEW_PASSWORD)
    await _refused(staff.accept_invitation(rt, token, "another password"), 410, "invitation_used")
    await _refused(staff.invitation_for(rt, token), 410, "invitation_used")


async def test_an_invitation_expires_after_seven_days(rt, advance_clock):
    _, owner = await _owner(rt)
    _, early = await staff.invite(rt, owner, "early@team.example", "support")
    _, late = await staff.invite(rt, owner, "late@team.example", "support")
    advance_clock(staff.INVITATION_SECONDS - 60)
    await staff.accept_invitation(rt, early, NEW_PASSWORD)  # a minute before: still good
    advance_clock(61)
    await _refused(staff.invitation_for(rt, late), 410, "invitation_expired")
    await _refused(staff.accept_invitation(rt, late, NEW_PASSWORD), 410, "invitation_expired")
    assert await staff.list_invitations(rt, owner) == []


@pytest.mark.parametrize("token", ["", "fsi_unknown", "fws_not-an-invitation", "fsi_" + "x" * 200])
async def test_an_unknown_invitation_link_is_404(rt, token):
    await _refused(staff.accept_invitation(rt, token, NEW_PASSWORD), 404, "invitation_not_found")


async def test_inviting_again_replaces_the_older_link_and_a_revoked_one_is_refused(rt):
    _, owner = await _owner(rt)
    _, first = await staff.invite(rt, owner, "twice@team.example", "support")
    second_invitation, second = await staff.invite(rt, owner, "TWICE@team.example", "developer")
    await _refused(staff.accept_invitation(rt, first, NEW_PASSWORD), 410, "invitation_revoked")
    assert [i.id for i in await staff.list_invitations(rt, owner)] == [second_invitation.id]
    await staff.revoke_invitation(rt, owner, second_invitation.id)
    await _refused(staff.accept_invitation(rt, second, NEW_PASSWORD), 410, "invitation_revoked")


async def test_what_an_invitation_needs(rt):
    _, owner = await _owner(rt)
    await _refused(staff.invite(rt, owner, "nobody", "support"), 400, "email_invalid")
    await _refused(staff.invite(rt, owner, "a b@team.example", "support"), 400, "email_invalid")
    await _refused(staff.invite(rt, owner, "x@team.example", "admin"), 400, "role_invalid")
    await _refused(staff.invite(rt, owner, owner.email.upper(), "support"), 409, "already_a_member")
    _, token = await staff.invite(rt, owner, "short@team.example", "support")
    await _refused(staff.accept_invitation(rt, token, "short"), 400, "password_too_short")
    await staff.accept_invitation(rt, token, NEW_PASSWORD)  # a refused password did not spend the link


async def test_two_accepts_of_one_invitation_at_once_make_one_member(rt, other):
    _, owner = await _owner(rt)
    _, token = await staff.invite(rt, owner, "race@team.example", "support")
    results = await asyncio.gather(*(staff.accept_invitation(runtime, token, f"{NEW_PASSWORD} {i}")
                                     for i, runtime in enumerate((rt, other, rt, other))), return_exceptions=True)
    made = [r for r in results if isinstance(r, Staff)]
    refused = [r for r in results if not isinstance(r, Staff)]
    assert len(made) == 1 and all(isinstance(e, FlintError) and e.code == "invitation_used" for e in refused), results
    async with rt.db.read() as conn:
        rows = await conn.fetch_all("SELECT id FROM staff WHERE email = 'race@team.example'")
    assert [row["id"] for row in rows] == [made[0].id]
    # The winner's password is the one that signs in.
    winner = results.index(made[0])
    await accounts.sign_in(rt, "race@team.example", f"{NEW_PASSWORD} {winner}", next(_addresses))


async def test_one_email_on_two_teams_signs_in_to_the_oldest_membership(rt):
    _, first_owner = await _owner(rt)
    _, second_owner = await _owner(rt)
    first = await _member(rt, first_owner, "support", "both@team.example")
    await _member(rt, second_owner, "developer", "both@team.example")
    signed = await accounts.sign_in(rt, "both@team.example", NEW_PASSWORD, next(_addresses))
    assert signed.staff == first


# --- remove ---------------------------------------------------------------------------------------

async def test_removal_ends_that_persons_sessions_and_sign_ins(rt):
    _, owner = await _owner(rt)
    member = await _member(rt, owner, "support", "leaving@team.example")
    signed = [await accounts.sign_in(rt, member.email, NEW_PASSWORD, next(_addresses)) for _ in range(2)]
    owners_session = await accounts.start_session(rt, owner)
    removed = await staff.remove(rt, owner, member.id)
    assert removed.removed_at is not None
    for session in signed:
        assert await accounts.current(rt, session.token) is None
    async with rt.db.read() as conn:
        rows = await conn.fetch_all("SELECT revoked_at FROM web_sessions WHERE staff_id = :s", {"s": member.id})
    assert len(rows) == 2 and all(row["revoked_at"] for row in rows)
    assert await accounts.current(rt, owners_session.token) is not None  # nobody else's
    await _refused(accounts.sign_in(rt, member.email, NEW_PASSWORD, next(_addresses)), 401, "sign_in_failed")
    await _refused(staff.get_member(rt, owner, member.id), 404, "staff_not_found")
    await _refused(staff.remove(rt, owner, member.id), 404, "staff_not_found")
    # Removed, they may be invited again.
    again = await _member(rt, owner, "developer", "leaving@team.example")
    assert again.id != member.id and again.role == "developer"


async def test_a_removed_member_can_no_longer_act_with_an_old_copy_of_themselves(rt):
    _, owner = await _owner(rt)
    other_owner = await _member(rt, owner, "owner")
    await staff.remove(rt, other_owner, owner.id)
    await _refused(staff.invite(rt, owner, "late@team.example", "support"), 403, "role_forbidden")
    await _refused(staff.remove(rt, owner, other_owner.id), 403, "role_forbidden")


async def test_the_last_owner_stays(rt):
    _, owner = await _owner(rt)
    await _refused(staff.remove(rt, owner, owner.id), 409, "last_owner")
    second = await _member(rt, owner, "owner")
    await staff.remove(rt, owner, owner.id)  # another owner remains: leaving is allowed
    await _refused(staff.remove(rt, second, second.id), 409, "last_owner")
    support = await _member(rt, second, "support")
    await staff.remove(rt, second, support.id)  # members who are not owners go freely
    assert [m.id for m in await staff.list_team(rt, second)] == [second.id]


async def test_two_owners_removing_each_other_at_once_leave_one(rt, other):
    _, first = await _owner(rt)
    second = await _member(rt, first, "owner")
    results = await asyncio.gather(staff.remove(rt, first, second.id), staff.remove(other, second, first.id),
                                   return_exceptions=True)
    done = [r for r in results if isinstance(r, Staff)]
    refused = [r for r in results if not isinstance(r, Staff)]
    assert len(done) == 1 and len(refused) == 1, results
    # The loser is either the last owner or already removed: both leave one owner.
    assert isinstance(refused[0], FlintError) and refused[0].code in ("last_owner", "role_forbidden"), refused
    async with rt.db.read() as conn:
        rows = await conn.fetch_all("SELECT id FROM staff WHERE merchant_id = :m AND removed_at IS NULL",
                                    {"m": first.merchant_id})
    assert len(rows) == 1


# --- another merchant's ids --------------------------------------------------------------------------

async def test_another_merchants_member_or_invitation_is_404(rt):
    _, mine = await _owner(rt)
    _, theirs = await _owner(rt)
    their_member = await _member(rt, theirs, "support")
    their_invitation, _ = await staff.invite(rt, theirs, "pending@team.example", "support")
    await _refused(staff.get_member(rt, mine, their_member.id), 404, "staff_not_found")
    await _refused(staff.get_member(rt, mine, theirs.id), 404, "staff_not_found")
    await _refused(staff.remove(rt, mine, their_member.id), 404, "staff_not_found")
    await _refused(staff.remove(rt, mine, "stf_unknown"), 404, "staff_not_found")
    await _refused(staff.revoke_invitation(rt, mine, their_invitation.id), 404, "staff_invitation_not_found")
    assert [m.id for m in await staff.list_team(rt, mine)] == [mine.id]
    assert await staff.list_invitations(rt, mine) == []
    # Nothing of theirs changed.
    assert [m.id for m in await staff.list_team(rt, theirs)] == [theirs.id, their_member.id]
    assert [i.id for i in await staff.list_invitations(rt, theirs)] == [their_invitation.id]
    # Inviting an email that is staff elsewhere is fine: membership is per merchant.
    await staff.invite(rt, mine, their_member.email, "support")
