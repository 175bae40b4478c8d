"""Finding 9: every app's endpoint received the other apps' `app.installed` / `app.uninstalled`.
docs/api.md 12: they go to the app they are about, and to no other app (the merchant's own endpoints still
hear about every app)."""
from __future__ import annotations

from .partner import deliveries_to, installed_app, receiver, unique_path  # noqa: F401


async def test_app_lifecycle_events_go_to_the_app_they_are_about(server, server_rt, receiver):
    first_url, second_url, merchant_url = (receiver.url(unique_path(n)) for n in ("first", "second", "merchant"))
    first = await installed_app(server, server_rt, scopes=["orders:read"], webhook_url=first_url,
                                webhook_events=["*"])
    async with server.async_client(first.shop_key) as owner:
        await owner.post("/v1/webhook_endpoints", json={"url": merchant_url, "events": ["app.*"]})
    second = await installed_app(server, server_rt, shop=(first.shop, first.shop_key), scopes=["orders:read"],
                                 webhook_url=second_url, webhook_events=["*"])
    async with server.async_client(first.shop_key) as owner:
        assert (await owner.delete(f"/v1/installations/{second.installation_id}")).status_code == 200
    assert await deliveries_to(server_rt, first_url) == ["app.installed"]  # its own, nothing of the second's
    assert await deliveries_to(server_rt, second_url) == ["app.installed", "app.uninstalled"]
    assert await deliveries_to(server_rt, merchant_url) == ["app.installed", "app.uninstalled"]
