"""Orders over HTTP: totals in minor units, currencies from CLDR, pagination, cancel, events."""
import pytest

from flint import money


def _order(currency="usd", items=None, **extra):
    return {"currency": currency, "line_items": items or [{"name": "Cup", "quantity": 3, "unit_amount": 450}], **extra}


async def test_create_and_read_an_order(server, merchant):
    _, key = merchant
    async with server.async_client(key) as client:
        created = await client.post("/v1/orders", json=_order(
            items=[{"name": "Cup", "quantity": 3, "unit_amount": 450}, {"name": "Gift", "quantity": 1, "unit_amount": 0}],
            customer_email="buyer@example.com", reference="A-1001", metadata={"cart": "c_1"}))
        assert created.status_code == 200, created.text
        order = created.json()
        assert order["id"].startswith("ord_") and len(order["id"]) >= 4 + 16
        assert (order["object"], order["status"], order["amount_total"], order["amount_paid"]) == ("order", "open", 1350, 0)
        assert order["amount_refundable"] == 0 and order["extension_data"] == {}
        assert order["line_items"][0] == {"name": "Cup", "quantity": 3, "unit_amount": 450, "amount_total": 1350}
        assert order["created_at"].endswith("Z")
        assert (await client.get(f"/v1/orders/{order['id']}")).json() == order


# ISO 4217's exponents, including those where CLDR (Babel) says otherwise (IDR, COP, HUF, IQD).
@pytest.mark.parametrize("currency,exponent", [("usd", 2), ("jpy", 0), ("kwd", 3), ("eur", 2), ("bhd", 3),
                                               ("idr", 2), ("cop", 2), ("huf", 2), ("iqd", 3), ("xof", 0)])
def test_currency_exponents_are_iso_4217(currency, exponent):
    assert currency in money.supported_currencies()
    assert money.exponent(currency) == exponent


@pytest.mark.parametrize("code", ["xau", "xdr", "xts", "xxx", "clf", "usn", "abc"])
def test_metals_funds_and_test_codes_are_not_payable(code):
    assert code not in money.supported_currencies()


def test_formatting_uses_the_iso_minor_unit_and_the_locale():
    assert money.format_amount(1234, "jpy", "en") == "¥1,234"
    assert money.format_amount(1234, "kwd", "en").endswith("1.234")
    assert money.format_amount(1234, "usd", "en") == "$12.34"
    assert money.format_amount(123456, "idr", "de") == "1.234,56\xa0IDR"  # CLDR would round to 1.235
    assert money.format_amount(1234, "eur", "fr") == "12,34\xa0€"


async def test_jpy_and_kwd_orders(server, merchant):
    _, key = merchant
    async with server.async_client(key) as client:
        for currency in ("jpy", "kwd"):
            order = (await client.post("/v1/orders", json=_order(currency, [{"name": "X", "quantity": 1, "unit_amount": 1234}]))).json()
            assert (order["currency"], order["amount_total"]) == (currency, 1234)


async def test_list_pages_newest_first_with_a_cursor(server, server_rt):
    from support.factories import make_merchant

    _, key = await make_merchant(server_rt)
    async with server.async_client(key) as client:
        ids = [(await client.post("/v1/orders", json=_order())).json()["id"] for _ in range(5)]
        first = (await client.get("/v1/orders", params={"limit": 2})).json()
        assert first["object"] == "list" and first["has_more"] is True
        assert [o["id"] for o in first["data"]] == ids[::-1][:2]
        second = (await client.get("/v1/orders", params={"limit": 2, "starting_after": first["data"][-1]["id"]})).json()
        third = (await client.get("/v1/orders", params={"limit": 2, "starting_after": second["data"][-1]["id"]})).json()
        assert [o["id"] for o in second["data"] + third["data"]] == ids[::-1][2:]
        assert third["has_more"] is False
        assert len((await client.get("/v1/orders")).json()["data"]) == 5  # default limit 10


async def test_cancel_and_the_event_cursor(server, merchant):
    _, key = merchant
    async with server.async_client(key) as client:
        order = (await client.post("/v1/orders", json=_order())).json()
        canceled = await client.post(f"/v1/orders/{order['id']}/cancel")
        assert canceled.json()["status"] == "canceled"
        again = await client.post(f"/v1/orders/{order['id']}/cancel")
        assert (again.status_code, again.json()["code"]) == (409, "order_not_open")
        events = (await client.get(f"/v1/orders/{order['id']}/events")).json()["data"]
        assert [(e["sequence"], e["type"]) for e in events] == [(1, "order.created"), (2, "order.canceled")]
        assert events[0]["actor"]["type"] == "merchant" and events[0]["data"]["object"]["status"] == "open"
        assert events[1]["data"]["object"]["status"] == "canceled"
        after = (await client.get(f"/v1/orders/{order['id']}/events", params={"after": 1})).json()["data"]
        assert [e["sequence"] for e in after] == [2]
        one = (await client.get(f"/v1/events/{events[1]['id']}")).json()
        assert one == events[1]
        listed = (await client.get("/v1/events", params={"type": "order.canceled"})).json()["data"]
        assert events[1]["id"] in [e["id"] for e in listed]
        assert all(e["type"] == "order.canceled" for e in listed)


async def test_event_sequences_are_gapless_per_order(server, merchant):
    _, key = merchant
    async with server.async_client(key) as client:
        session = (await client.post("/v1/checkout/sessions", json={
            "order": _order(), "mode": "hosted", "success_url": "https://shop.example/ok"})).json()
        buyer = {"Authorization": f"Bearer {session['client_token']}"}
        card = {"number": "4000000000000002", "exp_month": 12, "exp_year": 2034, "cvc": "123"}
        declined = await client.post(f"/v1/checkout/sessions/{session['id']}/confirm", json={"card": card}, headers=buyer)
        assert (declined.status_code, declined.json()["code"]) == (402, "card_declined")
        assert declined.json()["payment"]["status"] == "failed"
        card["number"] = "4242424242424242"
        assert (await client.post(f"/v1/checkout/sessions/{session['id']}/confirm", json={"card": card}, headers=buyer)).status_code == 200
        await client.post("/v1/refunds", json={"order": session["order_id"], "amount": 100})
        events = (await client.get(f"/v1/orders/{session['order_id']}/events")).json()["data"]
        assert [e["sequence"] for e in events] == list(range(1, len(events) + 1))
        assert [e["type"] for e in events] == [
            "order.created", "checkout.session.created", "payment.failed", "payment.succeeded", "order.paid",
            "checkout.session.completed", "refund.succeeded", "order.refunded"]


def test_formatting_one_currency_never_changes_another():
    # Babel shares pattern objects between callers; a KWD amount must not give USD three decimals.
    for currency in ("usd", "kwd", "jpy", "usd", "kwd"):
        money.format_amount(1234, currency, "en")
    assert money.format_amount(1234, "usd", "en") == "$12.34"
    assert money.format_amount(1234, "jpy", "en") == "¥1,234"
    assert money.format_amount(1234, "kwd", "en").endswith("1.234")
