"""Finding 2: `webhooks:write` outlived an uninstall, and an app could list, repoint, disable or delete
the merchant's own endpoints. docs/api.md 12: an endpoint an app creates belongs to its installation (it
shows `installation_id`), receives only what the installation may read, is listed, changed or deleted
by that installation alone, and is deleted when the app is uninstalled; an app never sees or touches
the merchant's own endpoints (and the merchant's key does not manage the app's)."""
from __future__ import annotations

from .partner import deliveries_to, installed_app, pay, receiver, unique_path  # noqa: F401


async def test_an_apps_endpoint_is_its_installations_alone_and_dies_with_it(server, server_rt, receiver):
    inst = await installed_app(server, server_rt, scopes=["orders:read", "webhooks:write"])
    merchant_url, app_url = receiver.url(unique_path("merchant")), receiver.url(unique_path("app"))
    async with server.async_client(inst.shop_key) as owner, server.async_client(inst.token["access_token"]) as app:
        mine = (await owner.post("/v1/webhook_endpoints", json={"url": merchant_url, "events": ["*"]})).json()
        made = await app.post("/v1/webhook_endpoints", json={"url": app_url, "events": ["*"]})
        assert made.status_code == 200, made.text
        theirs = made.json()
        # Each side lists only its own.
        assert [e["id"] for e in (await app.get("/v1/webhook_endpoints")).json()["data"]] == [theirs["id"]]
        assert [e["id"] for e in (await owner.get("/v1/webhook_endpoints")).json()["data"]] == [mine["id"]]
        assert mine["installation_id"] is None
        assert theirs["installation_id"] == inst.installation_id and theirs["secret"].startswith("whsec_")
        assert theirs["created_by"] == {"type": "app", "id": inst.app.id}
        # The app cannot read, repoint, disable, rotate, or delete the merchant's endpoint: 404, unchanged.
        for method, path, body in (("GET", f"/v1/webhook_endpoints/{mine['id']}", None),
                                   ("POST", f"/v1/webhook_endpoints/{mine['id']}", {"url": app_url}),
                                   ("POST", f"/v1/webhook_endpoints/{mine['id']}", {"status": "disabled"}),
                                   ("POST", f"/v1/webhook_endpoints/{mine['id']}/rotate_secret", None),
                                   ("GET", f"/v1/webhook_endpoints/{mine['id']}/deliveries", None),
                                   ("DELETE", f"/v1/webhook_endpoints/{mine['id']}", None)):
            answer = await app.request(method, path, json=body)
            assert answer.status_code == 404, (method, path, answer.text)
            assert answer.json()["code"] == "webhook_endpoint_not_found"
        again = (await owner.get(f"/v1/webhook_endpoints/{mine['id']}")).json()
        assert (again["url"], again["status"]) == (merchant_url, "enabled")
        # ... nor the merchant's deliveries; and the merchant's key does not manage the app's endpoint.
        await owner.post("/v1/orders", json={"currency": "usd", "line_items": [
            {"name": "Beans", "quantity": 1, "unit_amount": 900}]})
        delivery = (await owner.get(f"/v1/webhook_endpoints/{mine['id']}/deliveries")).json()["data"][0]
        assert (await app.get(f"/v1/webhook_deliveries/{delivery['id']}")).status_code == 404
        assert (await app.post(f"/v1/webhook_deliveries/{delivery['id']}/retry")).status_code == 404
        assert (await owner.get(f"/v1/webhook_endpoints/{theirs['id']}")).status_code == 404
        assert (await owner.delete(f"/v1/webhook_endpoints/{theirs['id']}")).status_code == 404
        # The app manages its own.
        renamed = await app.post(f"/v1/webhook_endpoints/{theirs['id']}", json={"description": "feed"})
        assert renamed.status_code == 200 and renamed.json()["description"] == "feed"

    # It receives only what the installation may read: orders:read, not payments:read.
    await pay(server, inst.shop_key)
    types = await deliveries_to(server_rt, app_url)
    assert "order.paid" in types and not [t for t in types if t.startswith(("payment.", "refund."))], types

    # Uninstalled: the endpoint is deleted and gets nothing more; the merchant's own is untouched.
    async with server.async_client(inst.shop_key) as owner:
        assert (await owner.delete(f"/v1/installations/{inst.installation_id}")).status_code == 200
        before = await deliveries_to(server_rt, app_url)
        await pay(server, inst.shop_key)
        assert await deliveries_to(server_rt, app_url) == before
        assert (await owner.get(f"/v1/webhook_endpoints/{mine['id']}")).json()["status"] == "enabled"
    async with server_rt.db.read() as conn:
        row = await conn.fetch_one("SELECT status FROM webhook_endpoints WHERE id = :id", {"id": theirs["id"]})
    assert row["status"] == "deleted"


async def test_two_installations_of_one_merchant_never_see_each_others_endpoints(server, server_rt, receiver):
    first = await installed_app(server, server_rt, scopes=["orders:read", "webhooks:write"])
    second = await installed_app(server, server_rt, shop=(first.shop, first.shop_key),
                                 scopes=["orders:read", "webhooks:write"])
    async with server.async_client(first.token["access_token"]) as one, \
            server.async_client(second.token["access_token"]) as two:
        made = (await one.post("/v1/webhook_endpoints", json={"url": receiver.url(unique_path("one")),
                                                              "events": ["order.*"]})).json()
        assert (await two.get("/v1/webhook_endpoints")).json()["data"] == []
        assert (await two.get(f"/v1/webhook_endpoints/{made['id']}")).status_code == 404
        assert (await two.delete(f"/v1/webhook_endpoints/{made['id']}")).status_code == 404
