"""A partner app installed in real Chromium, driven by a real third-party OAuth client.

Authlib's OAuth 2.0 client (not Flint's code) does the app's side over HTTP against a running
``flint serve``: the authorization URL with PKCE S256, the code exchange, an API call with the token,
refresh with rotation and revocation (RFC 6749, 7636, 7009). The merchant's side happens in the
browser: the sign-in form and the hosted consent page, by their labels and buttons. The app's
redirect URI is a page on the e2e shop (``http://localhost:PORT``, a loopback http URI as RFC 8252
7.3 allows); what the app receives is the URL the browser lands on.
"""
from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from authlib.integrations.httpx_client import OAuth2Client
from playwright.sync_api import Page, expect
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

from flint.apps import service as apps
from flint.merchants import service as merchants
from flint.runtime import Runtime

from .conftest import run_async
from .helpers import assert_accessible, screenshot
from support.shop import page_html

PASSWORD = "a long and correct password"
APP_NAME = "Risk Score"
SCOPES = ["orders:read", "payments:read", "events:read"]
# What the consent page says each scope lets the app do (server/oauth/routes.py SCOPE_WORDS).
SCOPE_WORDS = {
    "orders:read": "See your orders, checkout sessions and payment links",
    "payments:read": "See payments (card brand and last four digits only, never card numbers)",
    "events:read": "Read your store's event history",
}
WEBHOOK_EVENTS = ["order.paid", "refund.*"]
# app.installed and app.uninstalled always, then what the filters above match, sorted.
# What it says the app will be told about: in words, grouped by what each event reveals (server/scopes.py).
RECEIVES = {
    "About your orders, checkouts and payment links": ["When an order is paid"],
    "About payments and refunds (amounts, card brand and last four digits)": ["When a refund goes through",
                                                                              "When a refund fails"],
    "About this app itself": ["When this app is installed", "When this app is uninstalled"],
}
# Nothing listens here: the app's webhook deliveries (app.installed) are refused at once, which is
# all this test needs of them; the consent page lists the events all the same.
WEBHOOK_URL = "http://127.0.0.1:9/flint-webhooks"
CALLBACK_PATH = "/oauth/callback"
TIMEOUT = 5_000  # ms, for each wait in the browser (every step here takes well under a second)


@dataclass
class Install:
    client_id: str
    client_secret: str
    app_id: str
    redirect_uri: str
    shop_email: str
    shop_key: str


@pytest.fixture
def install(server, shop) -> Install:
    """A developer merchant with an app (redirect URI on the shop), and a shop merchant with a known
    password who will install it; all seeded straight into the server's database."""
    redirect_uri = shop.serve(CALLBACK_PATH, page_html("Connected", "<h1>Risk Score is connecting</h1>"))
    tag = secrets.token_hex(4)

    async def seed():
        runtime = await Runtime.start(server.runtime_config())
        try:
            developer, _ = await merchants.create_merchant(runtime, name="Risk Tools Ltd", password=PASSWORD,
                                                           email=f"dev-{tag}@risk.example")
            app, client_secret, _ = await apps.create_app(
                runtime, developer.id, name=APP_NAME, redirect_uris=[redirect_uri], scopes=SCOPES,
                webhook_url=WEBHOOK_URL, webhook_events=WEBHOOK_EVENTS)
            owner, key = await merchants.create_merchant(runtime, name="Acme Coffee", password=PASSWORD,
                                                         email=f"owner-{tag}@acme.example")
            return app, client_secret, owner, key
        finally:
            await runtime.stop()

    app, client_secret, owner, key = run_async(seed)
    return Install(client_id=app.client_id, client_secret=client_secret, app_id=app.id,
                   redirect_uri=redirect_uri, shop_email=owner.email, shop_key=key)


def oauth_client(install: Install, **kwargs) -> OAuth2Client:
    return OAuth2Client(client_id=install.client_id, client_secret=install.client_secret,
                        redirect_uri=install.redirect_uri, scope=" ".join(SCOPES), code_challenge_method="S256",
                        token_endpoint_auth_method="client_secret_basic", timeout=10, **kwargs)


def sign_in_to_consent(page: Page, server, install: Install, authorization_url: str) -> None:
    """Opens the authorization URL: Flint sends the merchant to sign in first, then back to the
    consent page for exactly that request."""
    page.goto(authorization_url)
    expect(page).to_have_url(re.compile(re.escape(f"{server.url}/login?next=")), timeout=TIMEOUT)
    page.get_by_role("textbox", name="Email").fill(install.shop_email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(re.escape(f"{server.url}/oauth/authorize?")), timeout=TIMEOUT)
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Install {APP_NAME}?", timeout=TIMEOUT)


def decide(page: Page, install: Install, button: str) -> dict[str, list[str]]:
    """Clicks Approve or Deny, waits for the browser to land on the app's redirect URI (another
    origin: Flint answers the form with a 303 there) and returns that URL's query. If it does not
    land, the failure says what the browser reported (a Content-Security-Policy refusal, say)."""
    console: list[str] = []
    page.on("console", lambda message: console.append(message.text))
    page.get_by_role("button", name=button, exact=True).click()
    try:
        page.wait_for_url(re.compile(re.escape(install.redirect_uri + "?")), timeout=TIMEOUT)
    except PlaywrightTimeoutError:
        landed = False
    else:
        landed = True
    if not landed:
        pytest.fail(f"after {button}, the browser stayed on {page.url} instead of going to "
                    f"{install.redirect_uri}; its console said: {console}", pytrace=False)
    return parse_qs(urlsplit(page.url).query)


def test_an_authlib_app_is_installed_used_refreshed_and_revoked(page: Page, server, shop, install):
    verifier = secrets.token_urlsafe(48)
    with oauth_client(install) as client:
        authorization_url, state = client.create_authorization_url(f"{server.url}/oauth/authorize",
                                                                   code_verifier=verifier)
        query = parse_qs(urlsplit(authorization_url).query)
        assert query["code_challenge_method"] == ["S256"] and "code_verifier" not in query

        # The merchant, in the browser: sign in, read the consent page, approve.
        sign_in_to_consent(page, server, install, authorization_url)
        main = page.get_by_role("main")
        for scope in SCOPES:
            expect(main.get_by_text(SCOPE_WORDS[scope], exact=True)).to_be_visible()
            expect(main.get_by_text(scope, exact=True)).to_be_visible()
        for group, events in RECEIVES.items():
            told = page.get_by_role("heading", name=group).locator("xpath=following-sibling::ul[1]")
            expect(told.get_by_role("listitem")).to_have_text(events)
        expect(main.get_by_text("order.paid", exact=True)).to_have_count(0)  # words, not type names
        assert_accessible(page)
        screenshot(page, "oauth-consent")
        landed = decide(page, install, "Approve")

        # The app's side: what arrived at the redirect URI, then the token endpoint (PKCE).
        assert landed["state"] == [state] and len(landed["code"]) == 1 and "error" not in landed
        assert any(v.path == CALLBACK_PATH and v.query.get("state") == state for v in shop.visits(CALLBACK_PATH))
        token = client.fetch_token(f"{server.url}/oauth/token", authorization_response=page.url,
                                   code_verifier=verifier, state=state)
        assert token["token_type"] == "Bearer" and token["access_token"].startswith("fat_")
        assert sorted(token["scope"].split()) == sorted(SCOPES) and token["installation_id"].startswith("inst_")
        assert token["refresh_token"] and token["expires_in"] == 3600

        # An API call with the token, through the same client (it adds the Bearer header).
        orders = client.get(f"{server.url}/v1/orders")
        assert orders.status_code == 200, orders.text
        assert orders.json()["data"] == []  # the new shop has none, and sees none of anyone else's

        # Refresh: the refresh token rotates, and the new access token works.
        rotated = client.refresh_token(f"{server.url}/oauth/token", refresh_token=token["refresh_token"])
        assert rotated["refresh_token"] != token["refresh_token"]
        assert rotated["access_token"] != token["access_token"]
        assert rotated["installation_id"] == token["installation_id"]
        assert client.get(f"{server.url}/v1/orders").status_code == 200  # the client now holds the new pair

        # Revoke the (new) refresh token: RFC 7009 answers 200, and the grant's access token dies with it.
        revoked = client.revoke_token(f"{server.url}/oauth/revoke", token=rotated["refresh_token"],
                                      token_type_hint="refresh_token")
        assert revoked.status_code == 200, revoked.text

    with httpx.Client(base_url=server.url, timeout=10) as anyone:
        dead = anyone.get("/v1/orders", headers={"Authorization": f"Bearer {rotated['access_token']}"})
        assert dead.status_code == 401, dead.text
    with server.client(install.shop_key) as owner:
        installed = owner.get("/v1/installations")
        assert installed.status_code == 200, installed.text
        mine = [i for i in installed.json()["data"] if i["app_id"] == install.app_id]
        assert [i["id"] for i in mine] == [token["installation_id"]]


def test_a_merchant_denies_the_install(page: Page, server, install):
    verifier = secrets.token_urlsafe(48)
    with oauth_client(install) as client:
        authorization_url, state = client.create_authorization_url(f"{server.url}/oauth/authorize",
                                                                   code_verifier=verifier)
    sign_in_to_consent(page, server, install, authorization_url)
    landed = decide(page, install, "Deny")
    assert landed["error"] == ["access_denied"] and landed["state"] == [state]
    assert "code" not in landed
    with server.client(install.shop_key) as owner:
        installed = owner.get("/v1/installations")
        assert installed.status_code == 200, installed.text
        assert [i for i in installed.json()["data"] if i["app_id"] == install.app_id] == []
