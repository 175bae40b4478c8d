"""Finding 11: no cap on webhook endpoints per merchant, so one tenant could take the worker's delivery
slots. docs/api.md 13: at most 16 per merchant and per installation, 400 `too_many_endpoints`; a deleted
endpoint frees its place; the cap holds under concurrent creation (the count is taken under a lock)."""
from __future__ import annotations

import asyncio

from .partner import installed_app, new_shop, receiver, unique_path  # noqa: F401

CAP = 16


async def test_at_most_16_endpoints_per_merchant(server, server_rt, receiver):
    _, key = await new_shop(server_rt)
    async with server.async_client(key) as owner:
        made = [await owner.post("/v1/webhook_endpoints", json={"url": receiver.url(unique_path("cap")),
                                                                "events": ["order.paid"]}) for _ in range(CAP)]
        assert [m.status_code for m in made] == [200] * CAP
        refused = await owner.post("/v1/webhook_endpoints", json={"url": receiver.url("/one-more"), "events": ["*"]})
        assert refused.status_code == 400 and refused.json()["code"] == "too_many_endpoints"
        assert len((await owner.get("/v1/webhook_endpoints", params={"limit": 100})).json()["data"]) == CAP
        # A disabled endpoint still counts (it can be enabled again); a deleted one frees its place.
        await owner.post(f"/v1/webhook_endpoints/{made[0].json()['id']}", json={"status": "disabled"})
        assert (await owner.post("/v1/webhook_endpoints", json={"url": receiver.url("/x"),
                                                                "events": ["*"]})).status_code == 400
        await owner.delete(f"/v1/webhook_endpoints/{made[1].json()['id']}")
        assert (await owner.post("/v1/webhook_endpoints", json={"url": receiver.url("/y"),
                                                                "events": ["*"]})).status_code == 200


async def test_the_cap_holds_when_creations_race(server, server_rt, receiver):
    _, key = await new_shop(server_rt)
    async with server.async_client(key) as owner:
        answers = await asyncio.gather(*(owner.post("/v1/webhook_endpoints", json={
            "url": receiver.url(unique_path("race")), "events": ["*"]}) for _ in range(CAP + 14)))
        codes = sorted(a.status_code for a in answers)
        assert codes == [200] * CAP + [400] * 14, codes
        assert {a.json()["code"] for a in answers if a.status_code == 400} == {"too_many_endpoints"}
        assert len((await owner.get("/v1/webhook_endpoints", params={"limit": 100})).json()["data"]) == CAP


async def test_an_installations_endpoints_have_a_cap_of_their_own(server, server_rt, receiver):
    inst = await installed_app(server, server_rt, scopes=["orders:read", "webhooks:write"])
    async with server.async_client(inst.token["access_token"]) as app, server.async_client(inst.shop_key) as owner:
        for _ in range(CAP):
            assert (await app.post("/v1/webhook_endpoints", json={"url": receiver.url(unique_path("app")),
                                                                  "events": ["order.*"]})).status_code == 200
        refused = await app.post("/v1/webhook_endpoints", json={"url": receiver.url("/app-more"), "events": ["*"]})
        assert refused.status_code == 400 and refused.json()["code"] == "too_many_endpoints"
        # The merchant's own cap is separate: the app's 16 do not use up the merchant's places.
        assert (await owner.post("/v1/webhook_endpoints", json={"url": receiver.url("/mine"),
                                                                "events": ["*"]})).status_code == 200
