"""Finding 7: a session's `client_token` (the buyer's credential for paying it) was returned to app
tokens holding only `orders:read`. docs/api.md 12: only merchant keys and app tokens holding
`checkout:write` get it."""
from __future__ import annotations

from .partner import ORDER, installed_app


async def test_client_token_only_for_merchants_and_checkout_writers(server, server_rt):
    reader = await installed_app(server, server_rt, scopes=["orders:read"])
    writer = await installed_app(server, server_rt, shop=(reader.shop, reader.shop_key),
                                 scopes=["orders:read", "checkout:write"])
    async with server.async_client(reader.shop_key) as owner:
        session = (await owner.post("/v1/checkout/sessions", json={
            "order": ORDER, "mode": "embedded", "success_url": "https://shop.example/thanks"})).json()
        assert session["client_token"]
        assert (await owner.get(f"/v1/checkout/sessions/{session['id']}")).json()["client_token"]
    async with server.async_client(reader.token["access_token"]) as app:
        one = await app.get(f"/v1/checkout/sessions/{session['id']}")
        assert one.status_code == 200 and one.json()["id"] == session["id"] and one.json()["client_token"] is None
        listed = (await app.get("/v1/checkout/sessions")).json()["data"]
        assert [s["client_token"] for s in listed if s["id"] == session["id"]] == [None]
    async with server.async_client(writer.token["access_token"]) as app:
        assert (await app.get(f"/v1/checkout/sessions/{session['id']}")).json()["client_token"]
        made = await app.post("/v1/checkout/sessions", json={"order": ORDER, "mode": "hosted",
                                                             "success_url": "https://shop.example/thanks"})
        assert made.status_code == 200 and made.json()["client_token"]
