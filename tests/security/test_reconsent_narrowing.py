"""Finding 8: consenting again with fewer scopes left the older, broader grants and refresh tokens
alive. docs/api.md 12: consent again with fewer scopes narrows every live token and refresh token of that
installation."""
from __future__ import annotations

import httpx

from support.oauth import client_for, install

from .partner import installed_app


async def test_consenting_again_with_fewer_scopes_narrows_every_live_token(server, server_rt):
    inst = await installed_app(server, server_rt, scopes=["orders:read", "payments:read"])
    broad = inst.token
    async with server.async_client(broad["access_token"]) as app:
        assert (await app.get("/v1/payments")).status_code == 200
    async with httpx.AsyncClient(base_url=server.url, follow_redirects=False, timeout=30) as browser:
        narrow, _ = await install(server, browser, inst.app, inst.client_secret, inst.shop.email, scope="orders:read")
    assert narrow["scope"] == "orders:read" and narrow["installation_id"] == inst.installation_id
    # The older access token lost payments:read at once ...
    async with server.async_client(broad["access_token"]) as app:
        refused = await app.get("/v1/payments")
        assert refused.status_code == 403 and refused.json()["code"] == "insufficient_scope"
        assert (await app.get("/v1/orders")).status_code == 200
    # ... and its refresh token only ever gives the narrower set.
    async with client_for(server, inst.app, inst.client_secret, token=broad) as client:
        refreshed = await client.refresh_token(f"{server.url}/oauth/token", refresh_token=broad["refresh_token"])
    assert refreshed["scope"] == "orders:read"
    async with server.async_client(refreshed["access_token"]) as app:
        assert (await app.get("/v1/payments")).status_code == 403
    async with server.async_client(inst.shop_key) as owner:
        shown = (await owner.get(f"/v1/installations/{inst.installation_id}")).json()
    assert shown["consented"]["scopes"] == ["orders:read"]
