"""Installing an app grants it access to the account: only owners and developers may approve it
(docs/api.md 15); support staff get a page that says their role does not allow it."""
from __future__ import annotations

import secrets

import httpx
import pytest

from flint.apps import service as apps
from flint.merchants import service as merchants
from flint.staff import service as staff
from support.oauth import PASSWORD, REDIRECT, client_for, sign_in


@pytest.fixture
async def browser(server):
    async with httpx.AsyncClient(base_url=server.url, follow_redirects=False, timeout=30) as client:
        yield client


@pytest.mark.parametrize(("role", "allowed"), [("support", False), ("developer", True)])
async def test_only_roles_that_may_change_apps_see_the_consent_page(server, server_rt, browser, role, allowed):
    shop, _ = await merchants.create_merchant(server_rt, name="Team", email=f"t{secrets.token_hex(4)}@shop.example",
                                              password=PASSWORD)
    dev, _ = await merchants.create_merchant(server_rt, name="Dev", email=f"d{secrets.token_hex(4)}@dev.example",
                                             password=PASSWORD)
    app, client_secret, _ = await apps.create_app(server_rt, dev.id, name="Helper", redirect_uris=[REDIRECT],
                                                  scopes=["orders:read"])
    async with server_rt.db.transaction() as conn:
        owner = await staff.ensure_owner(conn, shop)
    email = f"{role}-{secrets.token_hex(3)}@shop.example"
    _, token = await staff.invite(server_rt, owner, email, role)
    await staff.accept_invitation(server_rt, token, PASSWORD)
    await sign_in(browser, email)
    async with client_for(server, app, client_secret, scope="orders:read") as client:
        url, _ = client.create_authorization_url(f"{server.url}/oauth/authorize", code_verifier=secrets.token_urlsafe(48))
        page = await browser.get(url.removeprefix(server.url))
    if allowed:
        assert page.status_code == 200 and "Approve" in page.text
    else:
        assert page.status_code == 403 and "Your role does not allow this" in page.text
        assert "Approve" not in page.text
