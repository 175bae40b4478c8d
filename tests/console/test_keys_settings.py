"""The console's API keys and Settings pages over real HTTP (docs/api.md 15), as a browser uses them: each
page per role (support gets 403 on API keys and may only view Settings), every action through the
merchants service the API uses, refused without its form token (403, nothing changed), refused for a role
lacking it (403, nothing changed), 404 across merchants, and acting once when the same form comes twice."""
from __future__ import annotations

import html
import itertools
import json
import re

import httpx
import pytest

from flint.accounts import service as accounts
from flint.forms import service as forms
from flint.http import assets
from flint.merchants import service as merchants
from flint.staff import service as staff

PASSWORD = "a long and correct password"
_counter = itertools.count(1)


def csrf_of(page: str, action: str | None = None) -> str:
    """The token of the form posting to ``action`` (the first form's when None)."""
    if action is None:
        return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    form = re.search(rf'<form method="post" action="{re.escape(action)}"[^>]*>\s*'
                     r'<input type="hidden" name="csrf_token" value="([^"]+)"', page)
    return form.group(1)


async def _team(rt, role: str):
    """A merchant (its first key's secret) and a member with ``role`` who accepted their invitation."""
    n = next(_counter)
    merchant, secret = await merchants.create_merchant(rt, name=f"Keys Shop {n}",
                                                       email=f"keys{n}-{id(rt)}@shop.example", password=PASSWORD)
    async with rt.db.transaction() as conn:
        owner = await staff.ensure_owner(conn, merchant)
    if role == "owner":
        return merchant, owner, secret
    _, token = await staff.invite(rt, owner, f"{role}{n}-{id(rt)}@shop.example", role)
    return merchant, await staff.accept_invitation(rt, token, PASSWORD), secret


async def _signed_in(server, email: str) -> httpx.AsyncClient:
    browser = httpx.AsyncClient(base_url=server.url, follow_redirects=False, timeout=30)
    login = await browser.get("/login")
    done = await browser.post("/login", data={"csrf_token": csrf_of(login.text), "email": email,
                                              "password": PASSWORD})
    assert done.status_code == 303
    return browser


@pytest.fixture
async def as_role(server, server_rt):
    opened: list[httpx.AsyncClient] = []

    async def sign_in(role: str):
        merchant, member, secret = await _team(server_rt, role)
        browser = await _signed_in(server, member.email)
        opened.append(browser)
        return merchant, member, secret, browser

    yield sign_in
    for browser in opened:
        await browser.aclose()


def nav_of(page: str) -> str:
    return re.search(r'<nav class="side" aria-label="Console">(.*?)</nav>', page, re.DOTALL).group(1)


def live_key_ids(keys) -> list[str]:
    return sorted(key.id for key in keys if key.revoked_at is None)


# -- API keys -----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("role", ["owner", "developer"])
async def test_owner_and_developer_list_create_and_revoke_keys(server, server_rt, as_role, role):
    merchant, member, first_secret, browser = await as_role(role)
    page = await browser.get("/dashboard/api_keys")
    assert page.status_code == 200
    assert "<h1>API keys</h1>" in page.text
    [first] = await merchants.list_keys(server_rt, merchant.id)
    assert f"sk_test_…{first.last4}" in page.text and first_secret not in page.text  # never a key's value

    created = await browser.post("/dashboard/api_keys", data={"csrf_token": csrf_of(page.text, "/dashboard/api_keys")})
    assert created.status_code == 200
    secret = html.unescape(re.search(r'<textarea id="secret-key" readonly[^>]*>([^<]+)</textarea>', created.text).group(1))
    assert re.search(r'<label for="secret-key">Secret key</label>', created.text)
    assert "no-store" in created.headers["cache-control"]
    # The new key works against the API (the same service /v1/merchant/keys uses), and is listed.
    async with httpx.AsyncClient(base_url=server.url, headers={"Authorization": f"Bearer {secret}"}) as api:
        listed = (await api.get("/v1/merchant/keys")).json()["data"]
    assert len(listed) == 2
    new_id = next(key["id"] for key in listed if key["id"] != first.id)
    # Shown once: the page afterwards lists it by its last four only.
    again = await browser.get("/dashboard/api_keys")
    assert secret not in again.text and f"sk_test_…{secret[-4:]}" in again.text
    # The merchants service records no event: the staff actor is in the log line of the action.
    assert f'"actor_type": "staff", "actor_id": "{member.id}", "api_key": "{new_id}"' in server.logs()

    revoked = await browser.post(f"/dashboard/api_keys/{first.id}/revoke",
                                 data={"csrf_token": csrf_of(again.text, f"/dashboard/api_keys/{first.id}/revoke")})
    assert revoked.status_code == 303 and revoked.headers["location"] == "/dashboard/api_keys?notice=revoked"
    assert live_key_ids(await merchants.list_keys(server_rt, merchant.id)) == [new_id]
    after = await browser.get(revoked.headers["location"])
    assert "The key was revoked" in after.text and "Revoked" in after.text
    # The last live key cannot be revoked: said on the page, nothing changed.
    last = await browser.post(f"/dashboard/api_keys/{new_id}/revoke",
                              data={"csrf_token": csrf_of(after.text, f"/dashboard/api_keys/{new_id}/revoke")})
    assert last.status_code == 409 and "Create a new key before revoking the last live one." in last.text
    assert live_key_ids(await merchants.list_keys(server_rt, merchant.id)) == [new_id]


async def test_support_gets_403_on_api_keys_and_cannot_act(server, server_rt, as_role):
    merchant, _, _, browser = await as_role("support")
    page = await browser.get("/dashboard/api_keys")
    assert page.status_code == 403 and "You do not have access to this page" in page.text
    [key] = await merchants.list_keys(server_rt, merchant.id)
    assert key.last4 not in page.text
    assert "API keys" not in nav_of(page.text)
    # Posting with a genuine token of this session is still refused by the role, and changes nothing.
    settings = await browser.get("/dashboard/settings")
    token = csrf_of(settings.text)  # the sign-out form's is not a form token; take a real one below
    session_id = await _session_id(server_rt, browser)
    token = forms.issue(server_rt, session_id)
    created = await browser.post("/dashboard/api_keys", data={"csrf_token": token})
    assert created.status_code == 403 and "sk_test_" not in created.text
    revoke = await browser.post(f"/dashboard/api_keys/{key.id}/revoke", data={"csrf_token": forms.issue(server_rt, session_id)})
    assert revoke.status_code == 403
    keys = await merchants.list_keys(server_rt, merchant.id)
    assert [k.id for k in keys] == [key.id] and keys[0].revoked_at is None


async def _session_id(rt, browser) -> str:
    found = await accounts.current(rt, browser.cookies.get("flint_session"))
    return found[0]


async def test_key_actions_without_their_form_token_are_403_and_change_nothing(server, server_rt, as_role):
    merchant, _, _, browser = await as_role("owner")
    _, _, _, other_browser = await as_role("owner")
    page = await browser.get("/dashboard/api_keys")
    [key] = await merchants.list_keys(server_rt, merchant.id)
    foreign = (await other_browser.get("/dashboard/api_keys")).text
    for token in (None, "forged", csrf_of(foreign, "/dashboard/api_keys")):  # another session's token
        data = {} if token is None else {"csrf_token": token}
        created = await browser.post("/dashboard/api_keys", data=data)
        assert created.status_code == 403 and "Nothing was changed" in created.text and "sk_test_" not in created.text
        revoked = await browser.post(f"/dashboard/api_keys/{key.id}/revoke", data=data)
        assert revoked.status_code == 403
    assert [k.revoked_at for k in await merchants.list_keys(server_rt, merchant.id)] == [None]
    assert "csrf_token" in page.text


async def test_another_merchants_key_is_404(server, server_rt, as_role):
    _, _, _, browser = await as_role("owner")
    other, _, _, _ = await as_role("owner")
    await merchants.create_key(server_rt, other.id)  # two live keys: revoking one would be allowed
    theirs = (await merchants.list_keys(server_rt, other.id))[0]
    page = await browser.get("/dashboard/api_keys")
    answer = await browser.post(f"/dashboard/api_keys/{theirs.id}/revoke",
                                data={"csrf_token": csrf_of(page.text, "/dashboard/api_keys")})
    assert answer.status_code == 404 and "Key not found" in answer.text
    assert all(k.revoked_at is None for k in await merchants.list_keys(server_rt, other.id))
    assert theirs.last4 not in page.text


async def test_creating_a_key_twice_with_one_form_creates_one(server, server_rt, as_role):
    merchant, _, _, browser = await as_role("owner")
    page = await browser.get("/dashboard/api_keys")
    token = csrf_of(page.text, "/dashboard/api_keys")
    first = await browser.post("/dashboard/api_keys", data={"csrf_token": token})
    second = await browser.post("/dashboard/api_keys", data={"csrf_token": token})
    assert first.status_code == 200 and 'id="secret-key"' in first.text
    assert second.status_code == 303 and second.headers["location"] == "/dashboard/api_keys?notice=again"
    assert len(await merchants.list_keys(server_rt, merchant.id)) == 2
    shown = await browser.get(second.headers["location"])
    assert "already sent; it acted once" in shown.text and 'id="secret-key"' not in shown.text


async def test_signed_out_is_sent_to_sign_in(server):
    async with httpx.AsyncClient(base_url=server.url, follow_redirects=False) as browser:
        for path in ("/dashboard/api_keys", "/dashboard/settings"):
            answer = await browser.get(path)
            assert answer.status_code == 303 and answer.headers["location"] == f"/login?next={path}"
        posted = await browser.post("/dashboard/api_keys", data={"csrf_token": "x"})
        assert posted.status_code == 303 and posted.headers["location"] == "/login"


# -- Settings -----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("role", ["owner", "developer"])
async def test_settings_change_origins_and_colour_through_the_merchants_service(server, server_rt, as_role, role):
    merchant, member, secret, browser = await as_role(role)
    page = await browser.get("/dashboard/settings")
    assert page.status_code == 200 and "<h1>Settings</h1>" in page.text
    assert f"<dd>{merchant.name}</dd>" in page.text and "shown read-only" in page.text
    assert "No origin is allowed yet" in page.text

    added = await browser.post("/dashboard/settings/origins",
                               data={"csrf_token": csrf_of(page.text, "/dashboard/settings/origins"),
                                     "origin": "HTTPS://Shop.Example:443"})
    assert added.status_code == 303 and added.headers["location"] == "/dashboard/settings?notice=origin_added"
    async with httpx.AsyncClient(base_url=server.url, headers={"Authorization": f"Bearer {secret}"}) as api:
        assert (await api.get("/v1/merchant")).json()["allowed_origins"] == ["https://shop.example"]
    page = await browser.get(added.headers["location"])
    assert "The origin was added" in page.text
    # The script tag for the origin: the loader's URL and its SRI hash from the manifest, ready to copy.
    manifest = (await browser.get("/widget/v1/manifest.json")).json()
    loader = next(f for f in manifest["files"] if f["path"].endswith("flint.js"))
    tag = html.unescape(re.search(r'<label for="tag-1">Script tag for https://shop.example</label>\s*'
                                  r'<textarea id="tag-1" readonly[^>]*>([^<]+)</textarea>', page.text).group(1))
    assert tag == (f'<script src="{server.url}{loader["path"]}" integrity="{loader["integrity"]}" '
                   'crossorigin="anonymous" data-client-token="CLIENT_TOKEN_OF_THE_SESSION" '
                   'data-target="#checkout" async></script>')
    assert loader["integrity"] == assets.asset("flint.js").integrity

    # The API's validation, shown at the field; nothing changed.
    bad = await browser.post("/dashboard/settings/origins",
                             data={"csrf_token": csrf_of(page.text, "/dashboard/settings/origins"),
                                   "origin": "https://shop.example/checkout"})
    assert bad.status_code == 400
    assert re.search(r'aria-describedby="origin-hint origin-error" aria-invalid="true"', bad.text)
    assert "is not an origin like https://shop.example." in bad.text
    assert 'value="https://shop.example/checkout"' in bad.text
    assert (await merchants.get_merchant(server_rt, merchant.id)).origins == ["https://shop.example"]

    color = await browser.post("/dashboard/settings/brand_color",
                               data={"csrf_token": csrf_of(page.text, "/dashboard/settings/brand_color"),
                                     "brand_color": "#0A7C4B"})
    assert color.status_code == 303
    page = await browser.get(color.headers["location"])
    assert (await merchants.get_merchant(server_rt, merchant.id)).brand_color == "#0a7c4b"
    assert "background:#0a7c4b" in page.text  # the preview's Pay button, in the nonce'd stylesheet
    wrong = await browser.post("/dashboard/settings/brand_color",
                               data={"csrf_token": csrf_of(page.text, "/dashboard/settings/brand_color"),
                                     "brand_color": "green"})
    assert wrong.status_code == 400 and "brand_color is a hex colour like #4f46e5." in wrong.text
    assert 'aria-invalid="true"' in wrong.text
    assert (await merchants.get_merchant(server_rt, merchant.id)).brand_color == "#0a7c4b"

    removed = await browser.post("/dashboard/settings/origins/remove",
                                 data={"csrf_token": csrf_of(page.text, "/dashboard/settings/origins/remove"),
                                       "origin": "https://shop.example"})
    assert removed.status_code == 303 and removed.headers["location"] == "/dashboard/settings?notice=origin_removed"
    assert (await merchants.get_merchant(server_rt, merchant.id)).origins == []
    assert f'"actor_id": "{member.id}"' in server.logs() and '"action": "merchant.origin_removed"' in server.logs()


async def test_support_views_settings_and_cannot_change_them(server, server_rt, as_role):
    merchant, _, _, browser = await as_role("support")
    await merchants.update_merchant(server_rt, merchant.id, origins=["https://shop.example"])
    page = await browser.get("/dashboard/settings")
    assert page.status_code == 200
    assert "API keys" not in nav_of(page.text)
    assert "can see the settings but not change them" in page.text
    assert 'action="/dashboard/settings/origins"' not in page.text and "Remove" not in page.text
    assert "Script tag for https://shop.example" in page.text
    session_id = await _session_id(server_rt, browser)
    for path, data in (("/dashboard/settings/origins", {"origin": "https://other.example"}),
                       ("/dashboard/settings/origins/remove", {"origin": "https://shop.example"}),
                       ("/dashboard/settings/brand_color", {"brand_color": "#000000"})):
        answer = await browser.post(path, data={"csrf_token": forms.issue(server_rt, session_id), **data})
        assert answer.status_code == 403 and "You do not have access to this page" in answer.text
    after = await merchants.get_merchant(server_rt, merchant.id)
    assert after.origins == ["https://shop.example"] and after.brand_color == merchant.brand_color


async def test_settings_forms_without_their_token_are_403_and_change_nothing(server, server_rt, as_role):
    merchant, _, _, browser = await as_role("owner")
    _, _, _, other_browser = await as_role("owner")
    foreign = (await other_browser.get("/dashboard/settings")).text
    for token in (None, "forged", csrf_of(foreign, "/dashboard/settings/origins")):
        data = {} if token is None else {"csrf_token": token}
        for path, field in (("/dashboard/settings/origins", {"origin": "https://shop.example"}),
                            ("/dashboard/settings/brand_color", {"brand_color": "#000000"})):
            answer = await browser.post(path, data={**data, **field})
            assert answer.status_code == 403 and "Nothing was changed" in answer.text
            assert "Allowed origins" not in answer.text  # nothing of the page shown
    after = await merchants.get_merchant(server_rt, merchant.id)
    assert after.origins == [] and after.brand_color == merchant.brand_color


async def test_settings_are_each_merchants_own(server, server_rt, as_role):
    _, _, _, browser = await as_role("owner")
    other, _, _, _ = await as_role("owner")
    await merchants.update_merchant(server_rt, other.id, origins=["https://theirs.example"])
    page = await browser.get("/dashboard/settings")
    assert "theirs.example" not in page.text and other.name not in page.text
    # Removing another merchant's origin from here touches only this merchant's list.
    answer = await browser.post("/dashboard/settings/origins/remove",
                                data={"csrf_token": csrf_of(page.text, "/dashboard/settings/origins"),
                                      "origin": "https://theirs.example"})
    assert answer.status_code == 303
    assert (await merchants.get_merchant(server_rt, other.id)).origins == ["https://theirs.example"]


async def test_the_same_settings_form_twice_acts_once(server, server_rt, as_role):
    merchant, _, _, browser = await as_role("owner")
    page = await browser.get("/dashboard/settings")
    token = csrf_of(page.text, "/dashboard/settings/origins")
    first = await browser.post("/dashboard/settings/origins", data={"csrf_token": token, "origin": "https://a.example"})
    await merchants.update_merchant(server_rt, merchant.id, origins=[])  # changed elsewhere in between
    second = await browser.post("/dashboard/settings/origins", data={"csrf_token": token, "origin": "https://a.example"})
    assert first.status_code == second.status_code == 303
    assert second.headers["location"] == first.headers["location"]
    assert (await merchants.get_merchant(server_rt, merchant.id)).origins == []  # not added a second time
    assert json.loads((await merchants.get_merchant(server_rt, merchant.id)).allowed_origins) == []
