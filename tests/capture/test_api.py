"""The capture API over HTTP (docs/api.md 17): ``capture`` on sessions and links, POST /v1/payments/{id}/capture
and /void, the payments:write scope for apps, another merchant's payment not found, OpenAPI."""
from __future__ import annotations

from tests.security.partner import installed_app, new_shop

CARD = {"number": "4242424242424242", "exp_month": 12, "exp_year": 2034, "cvc": "123"}
ORDER = {"currency": "usd", "line_items": [{"name": "Lamp", "quantity": 2, "unit_amount": 1500}]}


async def _authorized(server, key):
    async with server.async_client(key) as owner:
        session = (await owner.post("/v1/checkout/sessions", json={
            "order": ORDER, "mode": "embedded", "success_url": "https://shop.example/thanks",
            "capture": "manual"})).json()
    async with server.async_client(session["client_token"]) as buyer:
        paid = (await buyer.post(f"/v1/checkout/sessions/{session['id']}/confirm", json={"card": CARD})).json()
    return session, paid


async def test_sessions_and_links_carry_capture(server, merchant):
    _, key = merchant
    async with server.async_client(key) as owner:
        auto = (await owner.post("/v1/checkout/sessions", json={
            "order": ORDER, "mode": "hosted", "success_url": "https://shop.example/thanks"})).json()
        assert auto["capture"] == "automatic"
        bad = await owner.post("/v1/checkout/sessions", json={
            "order": ORDER, "mode": "hosted", "success_url": "https://shop.example/thanks", "capture": "later"})
        assert bad.status_code == 400 and bad.json()["param"] == "capture"
        order = (await owner.post("/v1/orders", json=ORDER)).json()
        link = (await owner.post("/v1/payment_links", json={"order": order["id"], "capture": "manual"})).json()
        assert link["capture"] == "manual"
        assert (await owner.get(f"/v1/payment_links/{link['id']}")).json()["capture"] == "manual"
        assert (await owner.get(f"/v1/checkout/sessions/{auto['id']}")).json()["capture"] == "automatic"


async def test_authorize_capture_partially_and_refund(server, merchant):
    _, key = merchant
    session, payment = await _authorized(server, key)
    assert (payment["status"], payment["capture_method"], payment["amount_capturable"]) == ("authorized", "manual", 3000)
    async with server.async_client(key) as owner:
        order = (await owner.get(f"/v1/orders/{session['order_id']}")).json()
        assert (order["status"], order["amount_paid"]) == ("authorized", 0)
        early = await owner.post("/v1/refunds", json={"payment": payment["id"]})
        assert (early.status_code, early.json()["code"]) == (409, "payment_not_refundable")
        too_much = await owner.post(f"/v1/payments/{payment['id']}/capture", json={"amount": 3001})
        assert (too_much.status_code, too_much.json()["code"]) == (400, "amount_too_large")
        captured = await owner.post(f"/v1/payments/{payment['id']}/capture", json={"amount": 1800})
        assert captured.status_code == 200, captured.text
        body = captured.json()
        assert (body["status"], body["amount"], body["amount_authorized"], body["amount_captured"],
                body["amount_capturable"]) == ("succeeded", 1800, 3000, 1800, 0)
        order = (await owner.get(f"/v1/orders/{session['order_id']}")).json()
        assert (order["status"], order["amount_paid"], order["amount_refundable"]) == ("paid", 1800, 1800)
        refund = (await owner.post("/v1/refunds", json={"order": order["id"]})).json()
        assert (refund["status"], refund["amount"]) == ("succeeded", 1800)
        void = await owner.post(f"/v1/payments/{payment['id']}/void")
        assert (void.status_code, void.json()["code"]) == (409, "payment_not_voidable")
        types = [e["type"] for e in (await owner.get("/v1/events", params={"limit": 100})).json()["data"]]
        assert {"payment.authorized", "payment.captured"} <= set(types)


async def test_void_over_http(server, merchant):
    _, key = merchant
    session, payment = await _authorized(server, key)
    async with server.async_client(key) as owner:
        voided = await owner.post(f"/v1/payments/{payment['id']}/void")
        assert voided.status_code == 200 and voided.json()["status"] == "canceled"
        assert (await owner.get(f"/v1/orders/{session['order_id']}")).json()["status"] == "open"
        late = await owner.post(f"/v1/payments/{payment['id']}/capture")
        assert (late.status_code, late.json()["code"]) == (409, "payment_not_capturable")


async def test_another_merchants_payment_is_not_found(server, server_rt, merchant):
    _, key = merchant
    _, payment = await _authorized(server, key)
    _, other_key = await new_shop(server_rt, "Other")
    async with server.async_client(other_key) as other:
        for action in ("capture", "void"):
            hidden = await other.post(f"/v1/payments/{payment['id']}/{action}")
            assert hidden.status_code == 404, hidden.text
    async with server.async_client(key) as owner:
        assert (await owner.get(f"/v1/payments/{payment['id']}")).json()["status"] == "authorized"


async def test_apps_need_payments_write(server, server_rt):
    reader = await installed_app(server, server_rt, scopes=["orders:read", "payments:read", "checkout:write"])
    _, payment = await _authorized(server, reader.shop_key)
    async with server.async_client(reader.token["access_token"]) as app:
        refused = await app.post(f"/v1/payments/{payment['id']}/capture")
        assert (refused.status_code, refused.json()["code"]) == (403, "insufficient_scope")
        refused = await app.post(f"/v1/payments/{payment['id']}/void")
        assert (refused.status_code, refused.json()["code"]) == (403, "insufficient_scope")
    writer = await installed_app(server, server_rt, shop=(reader.shop, reader.shop_key),
                                 scopes=["payments:read", "payments:write"])
    async with server.async_client(writer.token["access_token"]) as app:
        captured = await app.post(f"/v1/payments/{payment['id']}/capture")
        assert captured.status_code == 200 and captured.json()["status"] == "succeeded", captured.text


async def test_openapi_documents_capture_and_void(server):
    async with server.async_client() as anyone:
        spec = (await anyone.get("/v1/openapi.json")).json()
    assert spec["paths"]["/v1/payments/{payment_id}/capture"]["post"]["operationId"] == "capturePayment"
    assert spec["paths"]["/v1/payments/{payment_id}/void"]["post"]["operationId"] == "voidPayment"
