"""The console's Team page and the invitation page (docs/api.md 15) over real HTTP, as a browser uses
them: owners see and change the team, developers and support are refused (403) on the page and on every
action; each action is refused without its form token, acts once when sent twice, and cannot reach
another merchant's members or invitations (404); the invitation link signs its person in once, and a
link used, revoked, expired or unknown is a readable page that changes nothing."""
from __future__ import annotations

import html
import itertools
import re

import httpx
import pytest

from flint import clock
from flint.accounts import service as accounts
from flint.forms import service as forms
from flint.merchants import service as merchants
from flint.staff import service as staff
from flint.staff import store as staff_store

PASSWORD = "a long and correct password"
_counter = itertools.count(1)


def csrf_of(page: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


def form_token(page: str, action: str) -> str:
    """The single-use token of the form posting to ``action``."""
    found = re.search(rf'<form method="post" action="{re.escape(action)}"[^>]*>\s*'
                      r'<input type="hidden" name="form_token" value="([^"]+)">', page)
    assert found, action
    return found.group(1)


def invitation_link(page: str) -> str:
    found = re.search(r'<input id="invitation-link" type="text" readonly value="([^"]+)"', page)
    assert found, page
    return html.unescape(found.group(1))


@pytest.fixture
async def browser(server):
    async with httpx.AsyncClient(base_url=server.url, follow_redirects=False, timeout=30) as client:
        yield client


@pytest.fixture
async def stranger(server):
    """A second browser, nobody signed in."""
    async with httpx.AsyncClient(base_url=server.url, follow_redirects=False, timeout=30) as client:
        yield client


async def _team(rt, *roles: str):
    """A merchant, its owner, and a member for each of ``roles`` who accepted their invitation."""
    n = next(_counter)
    merchant, _ = await merchants.create_merchant(rt, name=f"Team Page Shop {n}",
                                                  email=f"teampage{n}-{id(rt)}@shop.example", password=PASSWORD)
    async with rt.db.transaction() as conn:
        owner = await staff.ensure_owner(conn, merchant)
    members = []
    for i, role in enumerate(roles):
        _, token = await staff.invite(rt, owner, f"{role}{n}.{i}-{id(rt)}@shop.example", role)
        members.append(await staff.accept_invitation(rt, token, PASSWORD))
    return merchant, owner, members


async def _sign_in(browser, email: str) -> None:
    page = await browser.get("/login")
    done = await browser.post("/login", data={"csrf_token": csrf_of(page.text), "email": email,
                                              "password": PASSWORD})
    assert done.status_code == 303


async def _session_id(rt, browser) -> str:
    return (await accounts.current(rt, browser.cookies.get("flint_session"))).session_id


async def _state(rt, merchant_id: str):
    """What a refused action must leave as it was: the live team and the pending invitations."""
    async with rt.db.read() as conn:
        team = [(m.id, m.role) for m in await staff_store.select_team(conn, merchant_id)]
        pending = [i.id for i in await staff_store.select_pending_invitations(conn, merchant_id, clock.now_iso())]
    return team, pending


# -- the page, per role -------------------------------------------------------------------------------------

async def test_an_owner_sees_members_invitations_and_the_invite_form(browser, server_rt):
    merchant, owner, (support,) = await _team(server_rt, "support")
    pending, _ = await staff.invite(server_rt, owner, "newcomer@shop.example", "developer")
    await _sign_in(browser, owner.email)
    page = await browser.get("/dashboard/team")
    assert page.status_code == 200
    members = re.search(r'<caption id="members-caption">Members</caption>(.*?)</table>', page.text, re.DOTALL).group(1)
    rows = re.findall(r"<tr>(.*?)</tr>", members.split("<tbody>")[1], re.DOTALL)
    assert len(rows) == 2
    assert owner.email in rows[0] and "Owner" in rows[0] and "(you)" in rows[0]
    assert support.email in rows[1] and "Support" in rows[1]
    assert clock.public(support.created_at)[:10] in rows[1]  # since
    assert f'aria-label="Remove {support.email}">Remove</button>' in rows[1]
    invitations = re.search(r"Pending invitations</caption>(.*?)</table>", page.text, re.DOTALL).group(1)
    assert "newcomer@shop.example" in invitations and "Developer" in invitations
    assert f'action="/dashboard/team/invitations/{pending.id}/revoke"' in invitations
    assert '<label for="invite-email">Email</label>' in page.text and 'id="invite-email" name="email"' in page.text
    assert '<label for="invite-role">Role</label>' in page.text and '<button type="submit">Invite</button>' in page.text
    assert 'id="invitation-link"' not in page.text  # only the answer to Invite shows a link
    assert merchant.name in page.text


@pytest.mark.parametrize("role", ["developer", "support"])
async def test_developers_and_support_get_403_on_the_page_and_on_every_action(browser, server_rt, role):
    merchant, owner, (member, other) = await _team(server_rt, role, "support")
    pending, _ = await staff.invite(server_rt, owner, "someone@shop.example", "support")
    await _sign_in(browser, member.email)
    page = await browser.get("/dashboard/team")
    assert page.status_code == 403 and "You do not have access to this page" in page.text
    assert 'href="/dashboard/team"' not in page.text
    before = await _state(server_rt, merchant.id)
    session_id = await _session_id(server_rt, browser)
    for action, data in (("/dashboard/team/invitations", {"email": "x@shop.example", "role": "owner"}),
                         (f"/dashboard/team/members/{other.id}/remove", {}),
                         (f"/dashboard/team/members/{owner.id}/remove", {}),
                         (f"/dashboard/team/invitations/{pending.id}/revoke", {})):
        # A genuine token for this person's session: the role alone refuses it.
        answer = await browser.post(action, data={**data, "form_token": forms.issue(server_rt, session_id)})
        assert answer.status_code == 403, action
        assert await _state(server_rt, merchant.id) == before


async def test_signed_out_goes_to_sign_in(browser):
    answer = await browser.get("/dashboard/team")
    assert answer.status_code == 303 and answer.headers["location"] == "/login?next=/dashboard/team"
    answer = await browser.post("/dashboard/team/invitations", data={"email": "a@b.example", "role": "owner"})
    assert answer.status_code == 303 and answer.headers["location"].startswith("/login")


# -- invite and join ------------------------------------------------------------------------------------------

async def test_invite_shows_the_link_once_and_the_link_signs_its_person_in(browser, stranger, server_rt, server):
    merchant, owner, _ = await _team(server_rt)
    await _sign_in(browser, owner.email)
    page = await browser.get("/dashboard/team")
    answer = await browser.post("/dashboard/team/invitations", data={
        "form_token": form_token(page.text, "/dashboard/team/invitations"), "email": " Sam.Support@Shop.Example ",
        "role": "support"})
    assert answer.status_code == 200
    link = invitation_link(answer.text)
    assert link.startswith(f"{server.url}/join/fsi_")
    assert '<label for="invitation-link">Invitation link</label>' in answer.text
    (invitation,) = await staff.list_invitations(server_rt, owner)
    assert invitation.email == "sam.support@shop.example" and invitation.role == "support"
    assert invitation.invited_by == owner.id  # the staff member who acted
    assert link.split("/join/")[1] not in (await browser.get("/dashboard/team")).text  # shown once

    path = link.removeprefix(server.url)
    join = await stranger.get(path)
    assert join.status_code == 200
    assert f"{owner.email} invites you" in join.text and merchant.name in join.text and "support" in join.text
    assert '<label for="password">Password</label>' in join.text and '<button type="submit">Join</button>' in join.text
    done = await stranger.post(path, data={"form_token": re.search(r'name="form_token" value="([^"]+)"',
                                                                   join.text).group(1), "password": PASSWORD})
    assert done.status_code == 303 and done.headers["location"] == "/dashboard"
    console = await stranger.get("/dashboard")
    assert console.status_code == 200 and "sam.support@shop.example (support)" in console.text
    assert (await stranger.get("/dashboard/team")).status_code == 403
    team = await staff.list_team(server_rt, owner)
    assert [(m.email, m.role) for m in team][1:] == [("sam.support@shop.example", "support")]
    again = await browser.get(path)  # used: a readable page, nothing else
    assert again.status_code == 410 and "already used" in again.text
    # The new member signs in with the password they chose.
    async with httpx.AsyncClient(base_url=server.url, follow_redirects=False, timeout=30) as third:
        await _sign_in(third, "sam.support@shop.example")


async def test_an_invalid_invitation_is_shown_again_with_its_reason(browser, server_rt):
    _, owner, (member,) = await _team(server_rt, "support")
    await _sign_in(browser, owner.email)
    for data, status, says in (({"email": "not an email", "role": "support"}, 400, "Give the person"),
                               ({"email": "x@shop.example", "role": "admin"}, 400, "A role is one of"),
                               ({"email": member.email.upper(), "role": "support"}, 409, "already a member")):
        page = await browser.get("/dashboard/team")
        answer = await browser.post("/dashboard/team/invitations", data={
            **data, "form_token": form_token(page.text, "/dashboard/team/invitations")})
        assert answer.status_code == status and says in answer.text and 'role="alert"' in answer.text
        assert 'id="invitation-link"' not in answer.text
    assert await staff.list_invitations(server_rt, owner) == []


async def test_invite_without_a_valid_form_token_is_403_and_changes_nothing(browser, server_rt):
    _, owner, _ = await _team(server_rt)
    await _sign_in(browser, owner.email)
    other_browser_token = forms.issue(server_rt, "ws_someone_else")
    for token in (None, "forged", other_browser_token):
        data = {"email": "x@shop.example", "role": "owner"} | ({"form_token": token} if token else {})
        answer = await browser.post("/dashboard/team/invitations", data=data)
        assert answer.status_code == 403 and 'id="invitation-link"' not in answer.text
    assert await staff.list_invitations(server_rt, owner) == []


async def test_invite_sent_twice_acts_once(browser, server_rt):
    _, owner, _ = await _team(server_rt)
    await _sign_in(browser, owner.email)
    page = await browser.get("/dashboard/team")
    data = {"form_token": form_token(page.text, "/dashboard/team/invitations"), "email": "x@shop.example",
            "role": "developer"}
    first = await browser.post("/dashboard/team/invitations", data=data)
    second = await browser.post("/dashboard/team/invitations", data=data)
    assert first.status_code == 200 and second.status_code == 303
    assert second.headers["location"] == "/dashboard/team?notice=replayed"
    (invitation,) = await staff.list_invitations(server_rt, owner)
    # The first link still works: the second send did not replace it.
    assert (await staff.invitation_for(server_rt, invitation_link(first.text).split("/join/")[1])).id == invitation.id
    notice = await browser.get(second.headers["location"])
    assert "nothing was done twice" in notice.text


# -- revoke and remove ----------------------------------------------------------------------------------------

async def test_revoke_ends_the_link(browser, stranger, server_rt):
    _, owner, _ = await _team(server_rt)
    invitation, token = await staff.invite(server_rt, owner, "later@shop.example", "support")
    await _sign_in(browser, owner.email)
    page = await browser.get("/dashboard/team")
    action = f"/dashboard/team/invitations/{invitation.id}/revoke"
    assert (await browser.post(action, data={})).status_code == 403  # no token: nothing changes
    assert [i.id for i in await staff.list_invitations(server_rt, owner)] == [invitation.id]
    data = {"form_token": form_token(page.text, action)}
    done = await browser.post(action, data=data)
    assert done.status_code == 303 and done.headers["location"] == "/dashboard/team?notice=revoked"
    assert await staff.list_invitations(server_rt, owner) == []
    again = await browser.post(action, data=data)  # sent twice: the first answer again
    assert again.status_code == 303 and again.headers["location"] == "/dashboard/team?notice=revoked"
    join = await stranger.get(f"/join/{token}")
    assert join.status_code == 410 and "withdrawn" in join.text


async def test_remove_takes_a_member_off_and_signs_them_out(browser, stranger, server_rt):
    merchant, owner, (member,) = await _team(server_rt, "support")
    await _sign_in(stranger, member.email)
    assert (await stranger.get("/dashboard")).status_code == 200
    await _sign_in(browser, owner.email)
    page = await browser.get("/dashboard/team")
    action = f"/dashboard/team/members/{member.id}/remove"
    for data in ({}, {"form_token": "forged"}):
        assert (await browser.post(action, data=data)).status_code == 403
    assert len(await staff.list_team(server_rt, owner)) == 2
    data = {"form_token": form_token(page.text, action)}
    done = await browser.post(action, data=data)
    assert done.status_code == 303 and done.headers["location"] == "/dashboard/team?notice=removed"
    assert [m.id for m in await staff.list_team(server_rt, owner)] == [owner.id]
    async with server_rt.db.read() as conn:
        assert (await staff_store.select_member(conn, merchant.id, member.id)).removed_at is not None
    again = await browser.post(action, data=data)  # sent twice: acts once, answers as the first
    assert again.status_code == 303 and again.headers["location"] == "/dashboard/team?notice=removed"
    assert (await stranger.get("/dashboard")).status_code == 303  # their session ended
    shown = await browser.get(done.headers["location"])
    assert "The member was removed" in shown.text and member.email not in shown.text


async def test_the_last_owner_cannot_be_removed(browser, server_rt):
    _, owner, (second_owner,) = await _team(server_rt, "owner")
    await _sign_in(browser, owner.email)
    page = await browser.get("/dashboard/team")
    # Another owner first: allowed while one remains.
    done = await browser.post(f"/dashboard/team/members/{second_owner.id}/remove",
                              data={"form_token": form_token(page.text, f"/dashboard/team/members/{second_owner.id}/remove")})
    assert done.status_code == 303
    page = await browser.get("/dashboard/team")
    action = f"/dashboard/team/members/{owner.id}/remove"
    refused = await browser.post(action, data={"form_token": form_token(page.text, action)})
    assert refused.status_code == 409 and 'role="alert"' in refused.text
    assert "A team keeps at least one owner" in refused.text
    assert [m.id for m in await staff.list_team(server_rt, owner)] == [owner.id]
    assert (await browser.get("/dashboard/team")).status_code == 200  # still signed in


async def test_an_owner_may_remove_themselves_while_another_owner_remains(browser, server_rt):
    _, owner, (second_owner,) = await _team(server_rt, "owner")
    await _sign_in(browser, owner.email)
    page = await browser.get("/dashboard/team")
    action = f"/dashboard/team/members/{owner.id}/remove"
    done = await browser.post(action, data={"form_token": form_token(page.text, action)})
    assert done.status_code == 303 and done.headers["location"] == "/login"
    assert (await browser.get("/dashboard")).status_code == 303
    assert [m.id for m in await staff.list_team(server_rt, second_owner)] == [second_owner.id]


async def test_another_merchants_members_and_invitations_are_404(browser, server_rt):
    merchant, owner, _ = await _team(server_rt)
    other, other_owner, (other_member,) = await _team(server_rt, "support")
    other_invitation, _ = await staff.invite(server_rt, other_owner, "theirs@shop.example", "support")
    await _sign_in(browser, owner.email)
    theirs = await _state(server_rt, other.id)
    ours = await _state(server_rt, merchant.id)
    session_id = await _session_id(server_rt, browser)
    for action in (f"/dashboard/team/members/{other_member.id}/remove",
                   f"/dashboard/team/members/{other_owner.id}/remove",
                   f"/dashboard/team/invitations/{other_invitation.id}/revoke",
                   "/dashboard/team/members/stf_unknown/remove"):
        answer = await browser.post(action, data={"form_token": forms.issue(server_rt, session_id)})
        assert answer.status_code == 404, action
        assert "There is no such" in answer.text and other_member.email not in answer.text
    assert await _state(server_rt, other.id) == theirs and await _state(server_rt, merchant.id) == ours


# -- the invitation page --------------------------------------------------------------------------------------

async def _join_form(client, token: str) -> str:
    page = await client.get(f"/join/{token}")
    assert page.status_code == 200
    return re.search(r'name="form_token" value="([^"]+)"', page.text).group(1)


async def test_a_link_used_revoked_expired_or_unknown_is_a_readable_page_that_changes_nothing(stranger, server_rt):
    merchant, owner, _ = await _team(server_rt)
    _, used_token = await staff.invite(server_rt, owner, "used@shop.example", "support")
    used_form = await _join_form(stranger, used_token)
    await staff.accept_invitation(server_rt, used_token, PASSWORD)
    revoked, revoked_token = await staff.invite(server_rt, owner, "revoked@shop.example", "support")
    revoked_form = await _join_form(stranger, revoked_token)
    await staff.revoke_invitation(server_rt, owner, revoked.id)
    expired, expired_token = await staff.invite(server_rt, owner, "expired@shop.example", "support")
    expired_form = await _join_form(stranger, expired_token)
    async with server_rt.db.transaction() as conn:
        await conn.execute("UPDATE staff_invitations SET expires_at = :at WHERE id = :id",
                           {"at": clock.later_iso(-60), "id": expired.id})
    before = await _state(server_rt, merchant.id)
    for token, form, status, says in ((used_token, used_form, 410, "already used"),
                                      (revoked_token, revoked_form, 410, "withdrawn"),
                                      (expired_token, expired_form, 410, "expired"),
                                      ("fsi_unknown", used_form, 404, "not valid"),
                                      ("nonsense", used_form, 404, "not valid")):
        page = await stranger.get(f"/join/{token}")
        assert page.status_code == status and says in page.text and "Nothing was changed" in page.text
        assert 'name="password"' not in page.text and 'href="/login"' in page.text
        posted = await stranger.post(f"/join/{token}", data={"form_token": form, "password": PASSWORD})
        assert posted.status_code == status and "flint_session" not in posted.headers.get("set-cookie", "")
    assert await _state(server_rt, merchant.id) == before


async def test_the_join_form_needs_its_token_from_this_browser_and_a_password(stranger, server_rt, server):
    _, owner, _ = await _team(server_rt)
    invitation, token = await staff.invite(server_rt, owner, "joiner@shop.example", "developer")
    form = await _join_form(stranger, token)
    async with httpx.AsyncClient(base_url=server.url, follow_redirects=False, timeout=30) as attacker:
        theirs = await _join_form(attacker, token)  # a genuine token, for another browser's nonce
        for data in ({"password": PASSWORD}, {"form_token": "forged", "password": PASSWORD}):
            answer = await attacker.post(f"/join/{token}", data=data)
            assert answer.status_code == 403 and "This form has expired" in answer.text
    for data in ({"password": PASSWORD}, {"form_token": theirs, "password": PASSWORD}):
        answer = await stranger.post(f"/join/{token}", data=data)
        assert answer.status_code == 403 and "flint_session" not in answer.headers.get("set-cookie", "")
    short = await stranger.post(f"/join/{token}", data={"form_token": form, "password": "short"})
    assert short.status_code == 400 and "at least 8 characters" in short.text and 'role="alert"' in short.text
    assert [i.id for i in await staff.list_invitations(server_rt, owner)] == [invitation.id]  # still pending
    assert len(await staff.list_team(server_rt, owner)) == 1
    form = re.search(r'name="form_token" value="([^"]+)"', short.text).group(1)
    done = await stranger.post(f"/join/{token}", data={"form_token": form, "password": PASSWORD})
    assert done.status_code == 303 and done.headers["location"] == "/dashboard"


async def test_joining_in_a_browser_signed_in_as_someone_else_ends_that_session(browser, server_rt):
    _, owner, _ = await _team(server_rt)
    await _sign_in(browser, owner.email)
    old = await _session_id(server_rt, browser)
    _, token = await staff.invite(server_rt, owner, "colleague@shop.example", "support")
    page = await browser.get(f"/join/{token}")
    assert f"You are signed in as {owner.email}" in page.text
    form = re.search(r'name="form_token" value="([^"]+)"', page.text).group(1)
    done = await browser.post(f"/join/{token}", data={"form_token": form, "password": PASSWORD})
    assert done.status_code == 303
    now = await accounts.current(server_rt, browser.cookies.get("flint_session"))
    assert now.staff.email == "colleague@shop.example" and now.session_id != old
    async with server_rt.db.read() as conn:
        row = await conn.fetch_one("SELECT revoked_at FROM web_sessions WHERE id = :id", {"id": old})
    assert row["revoked_at"] is not None


@pytest.mark.parametrize("path", ["/dashboard/team", "/join/{token}"])
async def test_both_pages_have_the_page_headers_and_no_inline_code(browser, server_rt, path):
    _, owner, _ = await _team(server_rt)
    _, token = await staff.invite(server_rt, owner, "headers@shop.example", "support")
    await _sign_in(browser, owner.email)
    page = await browser.get(path.format(token=token))
    assert page.status_code == 200
    csp = page.headers["content-security-policy"]
    nonce = re.search(r"style-src 'nonce-([^']+)'", csp).group(1)
    assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp
    assert page.headers["cache-control"] == "no-store" and page.headers["referrer-policy"] == "no-referrer"
    for tag in re.findall(r"<(?:script|style)\b[^>]*>", page.text):
        assert f'nonce="{nonce}"' in tag, tag
    # The console's own two scripts only (served by Flint with their SRI hash), none inline; the join page none.
    for tag in re.findall(r"<script\b[^>]*>", page.text):
        assert path == "/dashboard/team" and re.search(r' src="/dashboard/assets/(htmx\.min|console)\.js\?v=[\w-]+" '
                                                      r'integrity="sha384-', tag), tag
    assert not re.search(r"<script\b[^>]*>[^<]", page.text)
    assert not re.search(r"\sstyle=|\son[a-z]+=|javascript:", page.text)
