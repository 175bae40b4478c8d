"""Who did it, for the console actions that emit no event (docs/api.md 15, issue 16: every action
"records actor: {type: "staff", id}"): Retry, Roll secret, Approve update, Create key, Revoke, the
Settings forms, Invite, Revoke (an invitation) and Remove, each done through its console form over real
HTTP by a signed-in member, are in the audit trail as that member ({type: staff, id: stf_...}); the same
actions through the JSON API are the merchant's key or the app's token. A form refused (its role) records
nothing. The Team page's Activity list shows the trail to owners (when, who by email, what), a page at a
time, and never another merchant's rows.

The live server runs without its background worker (FLINT_BACKGROUND=0), so a delivery stays pending
and a Retry is never refused as in flight."""
from __future__ import annotations

import html
import itertools
import re
import secrets

import httpx
import pytest

from flint.accounts import service as accounts
from flint.apps import service as apps
from flint.audit import service as audit
from flint.forms import service as forms
from flint.merchants import service as merchants
from flint.oauth.service import follow_app_change
from flint.staff import service as staff
from flint.webhooks import service as webhooks
from support import oauth as oauth_steps
from support.factories import make_order
from support.server import start_server, stop_server
from tests.conftest import SERVER_BACKEND, fresh_database

PASSWORD = "a long and correct password"
_counter = itertools.count(1)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """This module's live Flint (server_rt looks inside it): no background worker."""
    tmp = tmp_path_factory.mktemp("actors")
    cleanups: list = []
    live = start_server(tmp, {"FLINT_BACKGROUND": "0"}, db_url=fresh_database(SERVER_BACKEND, tmp, cleanups))
    yield live
    stop_server(live)
    for cleanup in cleanups:
        cleanup()


def token_of(page: str, action: str, name: str = "csrf_token") -> str:
    """The single-use token of the form posting to ``action``."""
    found = re.search(rf'<form method="post" action="{re.escape(action)}"[^>]*>\s*'
                      rf'<input type="hidden" name="{name}" value="([^"]+)"', page)
    assert found, f"no form to {action}"
    return found.group(1)


async def _team(rt, role: str = "owner"):
    """A merchant, its secret key, its owner, and the member with ``role`` (the owner for "owner")."""
    n = next(_counter)
    merchant, key = await merchants.create_merchant(rt, name=f"Actors Shop {n}",
                                                    email=f"actors{n}-{secrets.token_hex(3)}@shop.example",
                                                    password=PASSWORD)
    async with rt.db.transaction() as conn:
        owner = await staff.ensure_owner(conn, merchant)
    if role == "owner":
        return merchant, key, owner, owner
    _, token = await staff.invite(rt, owner, f"{role}{n}-{secrets.token_hex(3)}@shop.example", role)
    return merchant, key, owner, await staff.accept_invitation(rt, token, PASSWORD)


@pytest.fixture
async def signed_in(server):
    opened: list[httpx.AsyncClient] = []

    async def sign_in(email: str) -> httpx.AsyncClient:
        browser = httpx.AsyncClient(base_url=server.url, follow_redirects=False, timeout=30)
        opened.append(browser)
        login = await browser.get("/login")
        done = await browser.post("/login", data={"csrf_token": token_of(login.text, "/login"), "email": email,
                                                  "password": PASSWORD})
        assert done.status_code == 303, done.text
        return browser

    yield sign_in
    for browser in opened:
        await browser.aclose()


async def _trail(rt, merchant_id: str) -> list[tuple[str, dict, str | None]]:
    """(action, actor, object id) of the merchant's audit trail, oldest first."""
    entries, _ = await audit.list_entries(rt, merchant_id, 100)
    return [(e.action, e.actor.to_dict(), e.object_id) for e in reversed(entries)]


async def _endpoint_with_delivery(rt, merchant_id: str):
    """An endpoint of the merchant's and the one delivery (pending: no worker) an order made for it."""
    endpoint, _ = await webhooks.create_endpoint(rt, merchant_id, url=f"https://hooks.example/{secrets.token_hex(3)}",
                                                 events=["order.*"], description=None)
    await make_order(rt, merchant_id)
    [delivery], _ = await webhooks.list_deliveries(rt, merchant_id, endpoint.id, 10, None)
    return endpoint, delivery


def staff_actor(member) -> dict:
    assert member.id.startswith("stf_")
    return {"type": "staff", "id": member.id}


# -- each console action records the staff member ------------------------------------------------------------

async def test_roll_secret_and_retry_in_the_console_record_the_staff_member(server, server_rt, signed_in):
    merchant, _, _, developer = await _team(server_rt, "developer")
    endpoint, delivery = await _endpoint_with_delivery(server_rt, merchant.id)
    browser = await signed_in(developer.email)
    setup = len(await _trail(server_rt, merchant.id))  # the developer's own invitation
    page = (await browser.get("/dashboard/webhooks")).text
    action = f"/dashboard/webhooks/{endpoint.id}/roll_secret"
    rolled = await browser.post(action, data={"csrf_token": token_of(page, action)})
    assert rolled.status_code == 200 and "New signing secret" in rolled.text
    action = f"/dashboard/webhook_deliveries/{delivery.id}/retry"
    retried = await browser.post(action, data={"csrf_token": token_of(rolled.text, action), "back": "/dashboard/webhooks"})
    assert retried.status_code == 303, retried.text
    assert (await _trail(server_rt, merchant.id))[setup:] == [
        ("webhook_endpoint.secret_rolled", staff_actor(developer), endpoint.id),
        ("webhook_delivery.retried", staff_actor(developer), delivery.id)]


async def test_approve_update_in_the_console_records_the_staff_member(server, server_rt):
    shop, _, owner, _ = await _team(server_rt)
    developer, _ = await merchants.create_merchant(server_rt, name="Dev", email=f"d{secrets.token_hex(4)}@dev.example",
                                                   password=PASSWORD)
    app, client_secret, _ = await apps.create_app(server_rt, developer.id, name=f"Stock Sync {secrets.token_hex(2)}",
                                                  redirect_uris=[oauth_steps.REDIRECT], scopes=["orders:read"])
    async with httpx.AsyncClient(base_url=server.url, follow_redirects=False, timeout=30) as browser:
        token, _ = await oauth_steps.install(server, browser, app, client_secret, shop.email, scope="orders:read")
        await apps.update_app(server_rt, developer.id, app.id, {"scopes": ["orders:read", "refunds:write"]},
                              follow_app_change)
        page = (await browser.get("/dashboard/apps")).text
        action = f"/dashboard/apps/{token['installation_id']}/approve_update"
        approved = await browser.post(action, data={"csrf_token": token_of(page, action)})
        assert approved.status_code == 303, approved.text
    assert await _trail(server_rt, shop.id) == [
        ("installation.update_approved", staff_actor(owner), token["installation_id"])]
    [entry], _ = await audit.list_entries(server_rt, shop.id, 10)
    assert entry.changed["added"]["scopes"] == ["refunds:write"] and entry.changed["app_id"] == app.id


async def test_keys_and_settings_in_the_console_record_the_staff_member(server, server_rt, signed_in):
    merchant, first_secret, _, developer = await _team(server_rt, "developer")
    [first] = await merchants.list_keys(server_rt, merchant.id)
    browser = await signed_in(developer.email)
    setup = len(await _trail(server_rt, merchant.id))
    page = (await browser.get("/dashboard/api_keys")).text
    created = await browser.post("/dashboard/api_keys", data={"csrf_token": token_of(page, "/dashboard/api_keys")})
    assert created.status_code == 200
    secret = html.unescape(re.search(r'<textarea id="secret-key" readonly[^>]*>([^<]+)</textarea>', created.text).group(1))
    action = f"/dashboard/api_keys/{first.id}/revoke"
    revoked = await browser.post(action, data={"csrf_token": token_of(created.text, action)})
    assert revoked.status_code == 303
    [new] = [key for key in await merchants.list_keys(server_rt, merchant.id) if key.id != first.id]

    for path, field, value in (("/dashboard/settings/origins", "origin", "https://shop.example"),
                               ("/dashboard/settings/origins/remove", "origin", "https://shop.example"),
                               ("/dashboard/settings/brand_color", "brand_color", "#0a7c4b")):
        page = (await browser.get("/dashboard/settings")).text
        done = await browser.post(path, data={"csrf_token": token_of(page, path), field: value})
        assert done.status_code == 303, done.text
    me = staff_actor(developer)
    assert (await _trail(server_rt, merchant.id))[setup:] == [
        ("api_key.created", me, new.id), ("api_key.revoked", me, first.id), ("settings.updated", me, merchant.id),
        ("settings.updated", me, merchant.id), ("settings.updated", me, merchant.id)]
    entries, _ = await audit.list_entries(server_rt, merchant.id, 10)
    assert [e.changed for e in entries[:3]] == [
        {"brand_color": {"from": "#4f46e5", "to": "#0a7c4b"}},
        {"allowed_origins": {"added": [], "removed": ["https://shop.example"]}},
        {"allowed_origins": {"added": ["https://shop.example"], "removed": []}}]
    stored = " ".join(e.changes for e in entries)
    assert secret not in stored and first_secret not in stored and "sk_test_" not in stored


async def test_team_actions_in_the_console_record_the_owner(server, server_rt, signed_in):
    merchant, _, owner, support = await _team(server_rt, "support")
    browser = await signed_in(owner.email)
    page = (await browser.get("/dashboard/team")).text
    invited = await browser.post("/dashboard/team/invitations", data={
        "form_token": token_of(page, "/dashboard/team/invitations", "form_token"), "email": "New@Shop.Example",
        "role": "developer"})
    assert invited.status_code == 200 and "Invitation link" in invited.text
    [invitation] = await staff.list_invitations(server_rt, owner)
    action = f"/dashboard/team/invitations/{invitation.id}/revoke"
    revoked = await browser.post(action, data={"form_token": token_of(invited.text, action, "form_token")})
    assert revoked.status_code == 303
    page = (await browser.get("/dashboard/team")).text
    action = f"/dashboard/team/members/{support.id}/remove"
    removed = await browser.post(action, data={"form_token": token_of(page, action, "form_token")})
    assert removed.status_code == 303
    trail = await _trail(server_rt, merchant.id)
    me = staff_actor(owner)
    # (the first row: the support member's own invitation, made by _team through the service as the owner)
    assert trail[1:] == [("staff.invited", me, invitation.id), ("staff.invitation_revoked", me, invitation.id),
                         ("staff.removed", me, support.id)]
    entries, _ = await audit.list_entries(server_rt, merchant.id, 10)
    assert entries[2].changed == {"email": "new@shop.example", "role": "developer"}
    assert "fsi_" not in " ".join(e.changes for e in entries)  # never an invitation link's token
    # The Activity list names the owner; whoever was removed or invited by id and role, not their email.
    rows = activity_rows((await browser.get("/dashboard/team")).text)
    assert "Removed a team member" in rows[0] and support.id in rows[0] and owner.email in rows[0]
    assert "Revoked an invitation" in rows[1] and invitation.id in rows[1]
    assert not any(support.email in row or "new@shop.example" in row for row in rows)


async def test_a_refused_console_action_records_nothing(server, server_rt, signed_in):
    merchant, _, _, support = await _team(server_rt, "support")
    endpoint, delivery = await _endpoint_with_delivery(server_rt, merchant.id)
    browser = await signed_in(support.email)
    session_id = (await accounts.current(server_rt, browser.cookies.get("flint_session")))[0]
    before = await _trail(server_rt, merchant.id)
    for action in (f"/dashboard/webhooks/{endpoint.id}/roll_secret", f"/dashboard/webhook_deliveries/{delivery.id}/retry",
                   "/dashboard/settings/brand_color"):
        refused = await browser.post(action, data={"csrf_token": forms.issue(server_rt, session_id),
                                                   "brand_color": "#000000"})
        assert refused.status_code == 403
    assert await _trail(server_rt, merchant.id) == before


# -- the JSON API records the merchant's key or the app's token --------------------------------------------

async def test_the_api_records_the_merchant_key_and_the_app_token(server, server_rt):
    shop, key, _, _ = await _team(server_rt)
    merchant_actor = {"type": "merchant", "id": shop.id}
    developer, _ = await merchants.create_merchant(server_rt, name="Dev", email=f"d{secrets.token_hex(4)}@dev.example",
                                                   password=PASSWORD)
    app, client_secret, _ = await apps.create_app(server_rt, developer.id, name=f"Hooks App {secrets.token_hex(2)}",
                                                  redirect_uris=[oauth_steps.REDIRECT],
                                                  scopes=["orders:read", "webhooks:write"])
    async with httpx.AsyncClient(base_url=server.url, follow_redirects=False, timeout=30) as browser:
        token, _ = await oauth_steps.install(server, browser, app, client_secret, shop.email,
                                             scope="orders:read webhooks:write")
    await apps.update_app(server_rt, developer.id, app.id, {"scopes": ["orders:read", "webhooks:write", "refunds:write"]},
                          follow_app_change)
    async with server.async_client(key) as api, server.async_client(token["access_token"]) as as_app:
        assert (await api.post("/v1/merchant", json={"brand_color": "#112233"})).status_code == 200
        new_key = (await api.post("/v1/merchant/keys")).json()
        assert (await api.delete(f"/v1/merchant/keys/{new_key['id']}")).status_code == 200
        mine = (await api.post("/v1/webhook_endpoints", json={"url": "https://hooks.example/api",
                                                              "events": ["order.*"]})).json()
        theirs = (await as_app.post("/v1/webhook_endpoints", json={"url": "https://hooks.example/app",
                                                                   "events": ["order.*"]})).json()
        assert (await api.post(f"/v1/webhook_endpoints/{mine['id']}/rotate_secret")).status_code == 200
        assert (await as_app.post(f"/v1/webhook_endpoints/{theirs['id']}/rotate_secret")).status_code == 200
        assert (await api.post("/v1/orders", json={"currency": "usd", "line_items": [
            {"name": "Beans", "quantity": 1, "unit_amount": 1200}]})).status_code == 200
        [my_delivery] = (await api.get(f"/v1/webhook_endpoints/{mine['id']}/deliveries")).json()["data"]
        [app_delivery] = (await as_app.get(f"/v1/webhook_endpoints/{theirs['id']}/deliveries")).json()["data"]
        assert (await api.post(f"/v1/webhook_deliveries/{my_delivery['id']}/retry")).status_code == 200
        assert (await as_app.post(f"/v1/webhook_deliveries/{app_delivery['id']}/retry")).status_code == 200
        approved = await api.post(f"/v1/installations/{token['installation_id']}/approve_update")
        assert approved.status_code == 200, approved.text
    app_actor = {"type": "app", "id": app.id}
    assert await _trail(server_rt, shop.id) == [
        ("settings.updated", merchant_actor, shop.id), ("api_key.created", merchant_actor, new_key["id"]),
        ("api_key.revoked", merchant_actor, new_key["id"]),
        ("webhook_endpoint.secret_rolled", merchant_actor, mine["id"]),
        ("webhook_endpoint.secret_rolled", app_actor, theirs["id"]),
        ("webhook_delivery.retried", merchant_actor, my_delivery["id"]),
        ("webhook_delivery.retried", app_actor, app_delivery["id"]),
        ("installation.update_approved", merchant_actor, token["installation_id"])]


# -- the Team page's Activity list ---------------------------------------------------------------------------

def activity_of(page: str) -> str:
    found = re.search(r'<section class="panel" aria-labelledby="activity-caption" id="activity">(.*?)</section>',
                      page, re.DOTALL)
    assert found, page[-2000:]
    return found.group(1)


def activity_rows(page: str) -> list[str]:
    return re.findall(r"<tr>\s*<td><time.*?</tr>", activity_of(page), re.DOTALL)


async def test_the_team_page_lists_activity_for_owners_only_and_never_another_merchants(server, server_rt, signed_in):
    merchant, key, owner, developer = await _team(server_rt, "developer")
    other, _, other_owner, _ = await _team(server_rt)
    their_endpoint, _ = await webhooks.create_endpoint(server_rt, other.id, url="https://hooks.example/theirs",
                                                       events=["*"], description=None)
    await webhooks.rotate_secret(server_rt, other.id, their_endpoint.id, actor=staff.actor(other_owner))
    await staff.invite(server_rt, other_owner, "their-invitee@shop.example", "support")

    dev_browser = await signed_in(developer.email)
    page = (await dev_browser.get("/dashboard/api_keys")).text
    assert (await dev_browser.post("/dashboard/api_keys", data={
        "csrf_token": token_of(page, "/dashboard/api_keys")})).status_code == 200
    async with server.async_client(key) as api:
        assert (await api.post("/v1/merchant", json={"allowed_origins": ["https://shop.example"]})).status_code == 200
    # Developers do not see the Team page, so not its Activity either.
    assert (await dev_browser.get("/dashboard/team")).status_code == 403

    browser = await signed_in(owner.email)
    page = await browser.get("/dashboard/team")
    assert page.status_code == 200
    rows = activity_rows(page.text)
    assert len(rows) == 3  # newest first: the API's settings change, the developer's key, the invitation
    assert f"merchant {merchant.id}" in rows[0] and "Changed the settings" in rows[0]
    assert "origins added: https://shop.example" in rows[0]
    assert developer.email in rows[1] and "Created an API key" in rows[1]
    assert owner.email in rows[2] and "Invited a team member" in rows[2] and "as Developer" in rows[2]
    assert developer.email not in rows[2]  # an invited person's email is not shown (the trail keeps it)
    assert re.search(r'<time datetime="\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ">', rows[0])
    listed = activity_of(page.text)
    assert their_endpoint.id not in listed and "their-invitee" not in listed and other_owner.email not in listed
    assert "Older activity" not in listed


async def test_the_activity_list_pages_by_keyset(server, server_rt, signed_in):
    merchant, _, owner, _ = await _team(server_rt)
    for i in range(staff.ACTIVITY_PAGE + 3):
        await merchants.update_merchant(server_rt, merchant.id, brand_color=f"#1000{i:02x}", actor=staff.actor(owner))
    other, _, other_owner, _ = await _team(server_rt)
    their_invitation, _ = await staff.invite(server_rt, other_owner, "elsewhere@shop.example", "support")
    [their_entry], _ = await audit.list_entries(server_rt, other.id, 10)
    browser = await signed_in(owner.email)
    first = (await browser.get("/dashboard/team")).text
    assert len(activity_rows(first)) == staff.ACTIVITY_PAGE and "Newest activity" not in activity_of(first)
    older = re.search(r'<a class="older" href="([^"]+)" rel="next">Older activity</a>', activity_of(first)).group(1)
    second = (await browser.get(html.unescape(older))).text
    rows = activity_rows(first) + activity_rows(second)
    assert len(activity_rows(second)) == 3 and "Newest activity" in activity_of(second)
    assert "Older activity" not in activity_of(second)
    colours = [re.search(r"to (#[0-9a-f]{6})", row).group(1) for row in rows]
    assert colours == [f"#1000{i:02x}" for i in reversed(range(staff.ACTIVITY_PAGE + 3))]  # each once, in order
    # Another merchant's entry as the cursor: the first page of one's own, nothing of theirs.
    crafted = (await browser.get(f"/dashboard/team?activity_after={their_entry.id}")).text
    assert activity_rows(crafted) == activity_rows(first) and "elsewhere@shop.example" not in crafted
    assert their_invitation.id not in crafted
