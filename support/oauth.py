"""A partner app's install as a merchant does it, over real HTTP: sign in, the consent page, and the
code exchange by Authlib's OAuth 2.0 client (a third party's code, not Flint's), with PKCE S256.

The steps check each answer and raise AssertionError with the page when one is not what a working
install gets (this module is outside the test directories, so pytest does not rewrite its asserts)."""
from __future__ import annotations

import re
import secrets

import httpx
from authlib.integrations.httpx_client import AsyncOAuth2Client

REDIRECT = "http://127.0.0.1:9/callback"  # loopback http is a valid redirect URI (RFC 8252 7.3)
PASSWORD = "a long and correct password"


def _expect(response: httpx.Response, status: int, step: str) -> None:
    if response.status_code != status:
        raise AssertionError(f"{step}: HTTP {response.status_code}, expected {status}: {response.text[:500]}")


def csrf_of(html: str, name: str = "csrf_token") -> str:
    return re.search(rf'name="{name}" value="([^"]+)"', html).group(1)


async def sign_in(browser, email):
    page = await browser.get("/login")
    if page.status_code == 303:
        return  # already signed in
    done = await browser.post("/login", data={"csrf_token": csrf_of(page.text), "email": email, "password": PASSWORD})
    _expect(done, 303, "sign-in")


async def consent(browser, url: str, decision: str = "approve") -> httpx.Response:
    page = await browser.get(url)
    _expect(page, 200, "consent page")
    return await browser.post("/oauth/authorize", data={"consent": csrf_of(page.text, "consent"), "decision": decision})


def client_for(server, app, client_secret, scope="orders:read payments:read", **kwargs) -> AsyncOAuth2Client:
    return AsyncOAuth2Client(client_id=app.client_id, client_secret=client_secret, redirect_uri=REDIRECT,
                             scope=scope, code_challenge_method="S256",
                             token_endpoint_auth_method="client_secret_basic", **kwargs)


async def install(server, browser, app, client_secret, shop_email, scope="orders:read payments:read"):
    await sign_in(browser, shop_email)
    async with client_for(server, app, client_secret, scope) as client:
        verifier = secrets.token_urlsafe(48)
        url, state = client.create_authorization_url(f"{server.url}/oauth/authorize", code_verifier=verifier)
        answer = await consent(browser, url.removeprefix(server.url))
        _expect(answer, 303, "consent")
        token = await client.fetch_token(f"{server.url}/oauth/token", authorization_response=answer.headers["location"],
                                         code_verifier=verifier, state=state)
    return token, verifier
