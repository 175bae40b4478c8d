"""Partner-app installs over real HTTP, driven by Authlib's OAuth 2.0 client (a third party's code,
not Flint's): authorize with PKCE S256, the merchant's consent, code exchange, an API call with the
token, refresh with rotation, revoke, uninstall; and every refusal with its RFC error."""
from __future__ import annotations

import base64
import hashlib
import secrets
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from authlib.integrations.httpx_client import AsyncOAuth2Client
from authlib.integrations.base_client.errors import OAuthError

from flint.apps import service as apps
from flint.merchants import service as merchants
from support.oauth import PASSWORD, REDIRECT, client_for, consent, install, sign_in

ORDER = {"currency": "usd", "line_items": [{"name": "Beans", "quantity": 1, "unit_amount": 2400}]}


@pytest.fixture
async def developer(server_rt):
    """A merchant who develops an app, and the app (client secret shown once)."""
    dev, _ = await merchants.create_merchant(server_rt, name="Risk Tools Ltd", email=f"dev{secrets.token_hex(4)}@risk.example",
                                             password=PASSWORD)
    app, client_secret, webhook_secret = await apps.create_app(
        server_rt, dev.id, name="Risk Score", redirect_uris=[REDIRECT], scopes=["orders:read", "payments:read"])
    return app, client_secret


@pytest.fixture
async def shop(server_rt):
    """The merchant who installs the app: (merchant, secret key)."""
    return await merchants.create_merchant(server_rt, name="Acme Coffee", email=f"owner{secrets.token_hex(4)}@acme.example",
                                           password=PASSWORD)


@pytest.fixture
async def browser(server):
    async with httpx.AsyncClient(base_url=server.url, follow_redirects=False, timeout=30) as client:
        yield client


async def test_the_whole_install_with_authlib(server, browser, developer, shop):
    app, client_secret = developer
    merchant, key = shop
    # Unsigned: the consent page first sends the merchant to sign in, then back to the same request.
    async with client_for(server, app, client_secret) as client:
        url, _ = client.create_authorization_url(f"{server.url}/oauth/authorize", code_verifier=secrets.token_urlsafe(48))
    first = await browser.get(url.removeprefix(server.url))
    assert first.status_code == 303 and first.headers["location"].startswith("/login?next=%2Foauth%2Fauthorize")

    token, _ = await install(server, browser, app, client_secret, merchant.email)
    assert token["token_type"] == "Bearer" and token["access_token"].startswith("fat_")
    assert token["expires_in"] == 3600 and token["scope"] == "orders:read payments:read"
    assert token["merchant_id"] == merchant.id and token["installation_id"].startswith("inst_")
    # The merchant's name too: an app shows people names, and its token cannot read GET /v1/merchant.
    assert token["merchant_name"] == merchant.name

    async with server.async_client(key) as owner:
        order = (await owner.post("/v1/orders", json=ORDER)).json()
        installed = (await owner.get("/v1/installations")).json()["data"]
        assert [(i["id"], i["app_id"], i["status"]) for i in installed] == [(token["installation_id"], app.id, "active")]
        types = [e["type"] for e in (await owner.get("/v1/events", params={"type": "app.installed"})).json()["data"]]
        assert types == ["app.installed"]

    async with AsyncOAuth2Client(token=token) as api:  # an API call with the app's token
        read = await api.get(f"{server.url}/v1/orders/{order['id']}")
        assert read.status_code == 200 and read.json()["id"] == order["id"]
        refused = await api.post(f"{server.url}/v1/orders", json=ORDER)  # orders:write was not granted
        assert refused.status_code == 403 and refused.json()["code"] == "insufficient_scope"
        assert 'error="insufficient_scope"' in refused.headers["www-authenticate"]
        mine_only = await api.get(f"{server.url}/v1/merchant")
        assert mine_only.status_code == 403 and mine_only.json()["code"] == "insufficient_scope"
        changed = await api.post(f"{server.url}/v1/merchant", json={"allowed_origins": ["https://evil.example"]})
        assert changed.status_code == 403 and changed.json()["code"] == "insufficient_scope"
    async with server.async_client(key) as owner:  # refused, and nothing changed
        assert (await owner.get("/v1/merchant")).json()["allowed_origins"] == []

    async with client_for(server, app, client_secret, token=token) as client:
        rotated = await client.refresh_token(f"{server.url}/oauth/token", refresh_token=token["refresh_token"])
        assert rotated["refresh_token"] != token["refresh_token"] and rotated["access_token"] != token["access_token"]
        assert (rotated["merchant_id"], rotated["merchant_name"]) == (token["merchant_id"], token["merchant_name"])
        async with AsyncOAuth2Client(token=rotated) as api:
            assert (await api.get(f"{server.url}/v1/orders/{order['id']}")).status_code == 200
        revoked = await client.revoke_token(f"{server.url}/oauth/revoke", token=rotated["refresh_token"],
                                            token_type_hint="refresh_token")
        assert revoked.status_code == 200
    async with AsyncOAuth2Client(token=rotated) as api:  # revoking the refresh token ends its grant
        dead = await api.get(f"{server.url}/v1/orders/{order['id']}")
        assert dead.status_code == 401 and dead.json()["code"] == "access_token_invalid"


async def test_a_reused_refresh_token_kills_the_grant(server, browser, developer, shop):
    app, client_secret = developer
    merchant, _ = shop
    token, _ = await install(server, browser, app, client_secret, merchant.email)
    async with client_for(server, app, client_secret, token=token) as client:
        fresh = await client.refresh_token(f"{server.url}/oauth/token", refresh_token=token["refresh_token"])
        with pytest.raises(OAuthError) as reused:
            await client.refresh_token(f"{server.url}/oauth/token", refresh_token=token["refresh_token"])
        assert reused.value.error == "invalid_grant"
        with pytest.raises(OAuthError) as after:  # the thief's replay took the legitimate pair down too
            await client.refresh_token(f"{server.url}/oauth/token", refresh_token=fresh["refresh_token"])
        assert after.value.error == "invalid_grant"
    async with AsyncOAuth2Client(token=fresh) as api:
        dead = await api.get(f"{server.url}/v1/orders")
        assert dead.status_code == 401 and dead.json()["code"] == "access_token_invalid"


async def test_uninstall_kills_tokens_at_once_and_reinstall_works(server, browser, developer, shop):
    app, client_secret = developer
    merchant, key = shop
    token, _ = await install(server, browser, app, client_secret, merchant.email)
    async with server.async_client(key) as owner:
        gone = await owner.delete(f"/v1/installations/{token['installation_id']}")
        assert gone.status_code == 200 and gone.json()["status"] == "uninstalled"
        twice = await owner.delete(f"/v1/installations/{token['installation_id']}")
        assert twice.status_code == 409 and twice.json()["code"] == "installation_not_active"
        types = [e["type"] for e in (await owner.get("/v1/events", params={"type": "app.uninstalled"})).json()["data"]]
        assert types == ["app.uninstalled"]  # the refused second uninstall recorded nothing
    async with AsyncOAuth2Client(token=token) as api:
        after = await api.get(f"{server.url}/v1/orders")
        assert after.status_code == 401 and after.json()["code"] == "access_token_invalid"
    async with client_for(server, app, client_secret, token=token) as client:
        with pytest.raises(OAuthError) as refreshed:
            await client.refresh_token(f"{server.url}/oauth/token", refresh_token=token["refresh_token"])
        assert refreshed.value.error == "invalid_grant"
    again, _ = await install(server, browser, app, client_secret, merchant.email)
    assert again["installation_id"] != token["installation_id"]
    async with AsyncOAuth2Client(token=again) as api:
        assert (await api.get(f"{server.url}/v1/orders")).status_code == 200


async def test_an_app_token_sees_only_the_installing_merchants_objects(server, server_rt, browser, developer, shop):
    app, client_secret = developer
    merchant, _ = shop
    other, other_key = await merchants.create_merchant(server_rt, name="Other", email=f"o{secrets.token_hex(4)}@x.example",
                                                       password=PASSWORD)
    async with server.async_client(other_key) as theirs:
        their_order = (await theirs.post("/v1/orders", json=ORDER)).json()
    token, _ = await install(server, browser, app, client_secret, merchant.email)
    async with AsyncOAuth2Client(token=token) as api:
        answer = await api.get(f"{server.url}/v1/orders/{their_order['id']}")
        assert answer.status_code == 404 and answer.json()["code"] == "order_not_found"
        cancel = await api.post(f"{server.url}/v1/orders/{their_order['id']}/cancel")
        assert cancel.status_code in (403, 404) and cancel.json()["code"] in ("insufficient_scope", "order_not_found")
    async with server.async_client(other_key) as theirs:  # untouched
        assert (await theirs.get(f"/v1/orders/{their_order['id']}")).json()["status"] == "open"
    async with AsyncOAuth2Client(token=token) as api:
        assert (await api.get(f"{server.url}/v1/orders")).json()["data"] == []


def _challenge(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


@pytest.mark.parametrize("change, error", [
    ({"redirect_uri": REDIRECT + "x"}, None),  # an extra character: error page, no redirect
    ({"redirect_uri": "http://127.0.0.1:9/other"}, None),
    ({"client_id": "fca_unknown"}, None),
    ({"code_challenge": None}, "invalid_request"),
    ({"code_challenge_method": "plain"}, "invalid_request"),
    ({"response_type": "token"}, "unsupported_response_type"),
    ({"scope": "orders:read refunds:write"}, "invalid_scope"),
])
async def test_bad_authorization_requests(server, browser, developer, shop, change, error):
    app, _ = developer
    merchant, _ = shop
    await sign_in(browser, merchant.email)
    params = {"response_type": "code", "client_id": app.client_id, "redirect_uri": REDIRECT, "scope": "orders:read",
              "state": "xyz", "code_challenge": _challenge(secrets.token_urlsafe(48)), "code_challenge_method": "S256",
              **change}
    answer = await browser.get("/oauth/authorize", params={k: v for k, v in params.items() if v is not None})
    if error is None:
        assert answer.status_code == 400 and "location" not in answer.headers  # never redirected
        assert "This app cannot be installed" in answer.text
    else:
        assert answer.status_code == 303
        query = parse_qs(urlsplit(answer.headers["location"]).query)
        assert answer.headers["location"].startswith(REDIRECT + "?")
        assert query["error"] == [error] and query["state"] == ["xyz"]


async def test_deny_redirects_with_access_denied_and_state(server, browser, developer, shop):
    app, _ = developer
    merchant, _ = shop
    await sign_in(browser, merchant.email)
    url = "/oauth/authorize?" + str(httpx.QueryParams({
        "response_type": "code", "client_id": app.client_id, "redirect_uri": REDIRECT, "scope": "orders:read",
        "state": "s1", "code_challenge": _challenge(secrets.token_urlsafe(48)), "code_challenge_method": "S256"}))
    answer = await consent(browser, url, "deny")
    query = parse_qs(urlsplit(answer.headers["location"]).query)
    assert query["error"] == ["access_denied"] and query["state"] == ["s1"] and "code" not in query


async def _code(server, browser, app, merchant_email, verifier):
    await sign_in(browser, merchant_email)
    url = "/oauth/authorize?" + str(httpx.QueryParams({
        "response_type": "code", "client_id": app.client_id, "redirect_uri": REDIRECT, "scope": "orders:read",
        "state": "s", "code_challenge": _challenge(verifier), "code_challenge_method": "S256"}))
    answer = await consent(browser, url)
    return parse_qs(urlsplit(answer.headers["location"]).query)["code"][0]


async def _exchange(browser, app, secret, code, verifier, redirect_uri=REDIRECT):
    return await browser.post("/oauth/token", auth=(app.client_id, secret), data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri, "code_verifier": verifier})


@pytest.mark.parametrize("case", ["wrong_verifier", "no_verifier", "wrong_redirect", "reused", "expired", "bad_secret"])
async def test_bad_code_exchanges(server, server_rt, browser, developer, shop, case):
    app, secret = developer
    merchant, key = shop
    verifier = secrets.token_urlsafe(48)
    code = await _code(server, browser, app, merchant.email, verifier)
    if case == "wrong_verifier":
        answer = await _exchange(browser, app, secret, code, secrets.token_urlsafe(48))
    elif case == "no_verifier":
        answer = await _exchange(browser, app, secret, code, "")
    elif case == "wrong_redirect":
        answer = await _exchange(browser, app, secret, code, verifier, REDIRECT + "/")
    elif case == "reused":
        first = await _exchange(browser, app, secret, code, verifier)
        assert first.status_code == 200
        answer = await _exchange(browser, app, secret, code, verifier)
        # What the first exchange issued is revoked with it (the code may have been stolen).
        check = await browser.get("/v1/orders", headers={"Authorization": f"Bearer {first.json()['access_token']}"})
        assert check.status_code == 401
    elif case == "expired":
        async with server.async_client(key) as owner:  # codes live 60 s: move the server's clock past that
            assert (await owner.post("/v1/test_helpers/advance_clock", json={"seconds": 61})).status_code == 200
        answer = await _exchange(browser, app, secret, code, verifier)
    else:
        answer = await _exchange(browser, app, "fcs_wrong", code, verifier)
        assert answer.status_code == 401 and answer.json()["error"] == "invalid_client"
        assert answer.headers["www-authenticate"] == 'Basic realm="flint"'
        return
    assert answer.status_code == 400 and answer.json()["error"] == "invalid_grant", answer.text
    assert answer.headers["cache-control"] == "no-store"


async def test_the_metadata_document(browser, server):
    meta = (await browser.get("/.well-known/oauth-authorization-server")).json()
    assert meta["issuer"] == server.url and meta["code_challenge_methods_supported"] == ["S256"]
    assert meta["token_endpoint"] == f"{server.url}/oauth/token"
    assert meta["revocation_endpoint"] == f"{server.url}/oauth/revoke"


async def test_what_an_app_does_shows_as_the_apps_action(server, server_rt, browser, shop):
    """docs/api.md 10: every action an app takes shows in events as actor {type: "app", id: "app_..."}."""
    merchant, key = shop
    dev, _ = await merchants.create_merchant(server_rt, name="Writer", email=f"w{secrets.token_hex(4)}@dev.example",
                                             password=PASSWORD)
    app, client_secret, _ = await apps.create_app(server_rt, dev.id, name="Order Writer", redirect_uris=[REDIRECT],
                                                  scopes=["orders:read", "orders:write", "payments:read"])
    token, _ = await install(server, browser, app, client_secret, merchant.email,
                             scope="orders:read orders:write payments:read")
    async with AsyncOAuth2Client(token=token) as api:
        made = await api.post(f"{server.url}/v1/orders", json=ORDER, headers={"Idempotency-Key": "app-order-1"})
        again = await api.post(f"{server.url}/v1/orders", json=ORDER, headers={"Idempotency-Key": "app-order-1"})
    assert made.status_code == 200 and again.json()["id"] == made.json()["id"]  # keys scoped per app
    async with server.async_client(key) as owner:
        events = (await owner.get(f"/v1/orders/{made.json()['id']}/events")).json()["data"]
        # The merchant's own key with the same Idempotency-Key is another scope: a new order.
        mine = await owner.post("/v1/orders", json=ORDER, headers={"Idempotency-Key": "app-order-1"})
    assert [(e["type"], e["actor"]) for e in events] == [("order.created", {"type": "app", "id": app.id})]
    assert mine.json()["id"] != made.json()["id"]
