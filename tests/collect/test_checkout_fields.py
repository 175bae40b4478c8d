"""Buyer details and checkout fields through the JSON API (docs/api.md 14): what a session or link asks
for, every bad field refused at once before any attempt, and what the order keeps."""
from __future__ import annotations

import secrets

import pytest

from flint.merchants import service as merchants
from support.oauth import PASSWORD

CARD = {"number": "4242 4242 4242 4242", "exp_month": 12, "exp_year": 2034, "cvc": "123"}
ORDER = {"currency": "eur", "line_items": [{"name": "Beans", "quantity": 1, "unit_amount": 2400}]}
FULL = {"email": "required", "name": "required", "phone": "optional", "billing_address": "full",
        "shipping_address": {"allowed_countries": ["DE", "FR", "US"]}, "terms_url": "https://shop.example/terms"}
GIFT = [{"key": "gift_note", "label": "Gift note", "type": "text", "required": False, "max_length": 40},
        {"key": "wrap", "label": "Wrapping", "type": "dropdown", "required": True,
         "options": [{"value": "paper", "label": "Paper"}, {"value": "box", "label": "Box"}]},
        {"key": "vat_number", "label": "VAT number", "type": "text"}]
BERLIN = {"country": "DE", "line1": "Unter den Linden 1", "city": "Berlin", "postal_code": "10117"}


@pytest.fixture
async def shop(server, server_rt):
    merchant, key = await merchants.create_merchant(
        server_rt, name="Fields", email=f"f{secrets.token_hex(4)}@shop.example", password=PASSWORD)
    return merchant, key


async def new_session(server, key, **extra):
    async with server.async_client(key) as owner:
        made = await owner.post("/v1/checkout/sessions", json={
            "order": ORDER, "mode": "embedded", "success_url": "https://shop.example/thanks", **extra})
        assert made.status_code == 200, made.text
        return made.json()


async def confirm(server, session, **body):
    async with server.async_client(session["client_token"]) as buyer:
        return await buyer.post(f"/v1/checkout/sessions/{session['id']}/confirm", json={"card": CARD, **body})


async def order_and_payments(server, key, order_id):
    async with server.async_client(key) as owner:
        order = (await owner.get(f"/v1/orders/{order_id}")).json()
        payments = (await owner.get("/v1/payments", params={"order": order_id})).json()["data"]
    return order, payments


async def test_a_session_states_what_it_collects(server, shop):
    _, key = shop
    plain = await new_session(server, key)
    # Integrations from before keep their form: an optional email and name, nothing else.
    assert plain["collect"] == {"email": "optional", "name": "optional", "phone": "off", "billing_address": "off",
                                "shipping_address": None, "terms_url": None}
    assert plain["custom_fields"] == []
    full = await new_session(server, key, collect=FULL, custom_fields=GIFT)
    assert full["collect"] == FULL
    assert [f["key"] for f in full["custom_fields"]] == ["gift_note", "wrap", "vat_number"]
    assert full["custom_fields"][1]["options"] == GIFT[1]["options"]
    async with server.async_client(key) as owner:
        again = (await owner.get(f"/v1/checkout/sessions/{full['id']}")).json()
    assert again["collect"] == FULL and again["custom_fields"] == full["custom_fields"]


@pytest.mark.parametrize(("extra", "param"), [
    ({"collect": {"shipping_address": {"allowed_countries": ["DE", "XX"]}}},
     "collect.shipping_address.allowed_countries[1]"),
    ({"collect": {"terms_url": "https://shop.example;frame-ancestors *"}}, "collect.terms_url"),
    ({"custom_fields": [{"key": "wrap", "label": "Wrap", "type": "dropdown"}]}, "custom_fields[0].options"),
    ({"custom_fields": [GIFT[0], dict(GIFT[0], label="Again")]}, "custom_fields[1].key"),
])
async def test_a_bad_collect_is_refused_with_its_param_and_creates_nothing(server, shop, extra, param):
    _, key = shop
    async with server.async_client(key) as owner:
        before = (await owner.get("/v1/orders")).json()["data"]
        refused = await owner.post("/v1/checkout/sessions", json={
            "order": ORDER, "mode": "embedded", "success_url": "https://shop.example/thanks", **extra})
        after = (await owner.get("/v1/orders")).json()["data"]
    assert refused.status_code == 400, refused.text
    assert refused.json()["param"] == param
    assert after == before  # the inline order was not created either


async def test_more_than_five_custom_fields_are_refused(server, shop):
    _, key = shop
    six = [{"key": f"f{i}", "label": f"F{i}", "type": "text"} for i in range(6)]
    async with server.async_client(key) as owner:
        refused = await owner.post("/v1/checkout/sessions", json={
            "order": ORDER, "mode": "embedded", "success_url": "https://shop.example/thanks", "custom_fields": six})
    assert refused.status_code == 400
    assert refused.json()["param"].startswith("custom_fields")


async def test_every_bad_card_field_is_reported_at_once(server, shop):
    _, key = shop
    session = await new_session(server, key)
    refused = await confirm(server, session, card={"number": "4242 4242 4242 4241", "exp_month": 13,
                                                   "exp_year": 2034, "cvc": "1"})
    assert refused.status_code == 400
    problem = refused.json()
    # Only the card is wrong: its first problem's own code, as integrations knew it, and all of them.
    assert problem["code"] == "invalid_card_number"
    assert [(e["param"], e["code"]) for e in problem["errors"]] == [
        ("card.number", "invalid_card_number"), ("card.exp_month", "invalid_expiry_month"), ("card.cvc", "invalid_cvc")]
    _, payments = await order_and_payments(server, key, session["order_id"])
    assert payments == []


async def test_every_bad_field_is_refused_before_any_attempt(server, shop):
    _, key = shop
    session = await new_session(server, key, collect=FULL, custom_fields=GIFT)
    refused = await confirm(server, session, card=dict(CARD, cvc="1"), customer={
        "email": "not-an-email", "phone": "12", "billing_address": {"country": "US", "line1": "1 Main St",
                                                                    "city": "Springfield", "postal_code": "ABCDE"},
        "shipping_address": dict(BERLIN, country="JP")},
        custom_fields={"gift_note": "x" * 41, "wrap": "bag", "size": "XL"})
    assert refused.status_code == 400
    problem = refused.json()
    assert problem["code"] == "invalid_field"
    found = {(e["param"], e["code"]) for e in problem["errors"]}
    assert {("card.cvc", "invalid_cvc"), ("customer.email", "email_invalid"), ("customer.name", "field_required"),
            ("customer.phone", "phone_invalid"), ("customer.shipping_address.country", "country_not_allowed"),
            ("custom_fields.gift_note", "too_long"), ("custom_fields.wrap", "option_invalid"),
            ("custom_fields.size", "field_unknown"), ("terms_accepted", "terms_required")} <= found
    # The US address lacks its state and has a postal code no US one looks like.
    assert {p for p, _ in found} >= {"customer.billing_address.state", "customer.billing_address.postal_code"}
    assert problem["param"] == problem["errors"][0]["param"]
    order, payments = await order_and_payments(server, key, session["order_id"])
    assert payments == [] and order["customer"] is None and order["custom_fields"] == {}


async def test_the_order_keeps_what_the_buyer_gave(server, shop):
    _, key = shop
    session = await new_session(server, key, collect=FULL, custom_fields=GIFT)
    paid = await confirm(server, session, customer={
        "email": " Ada@Example.com", "name": "Ada Lovelace", "phone": "030 1234567",
        "billing_address": BERLIN, "shipping_address": {"country": "FR", "line1": "1 rue de Rivoli",
                                                        "city": "paris", "postal_code": "75001"}},
        custom_fields={"gift_note": "Happy birthday", "wrap": "box"}, terms_accepted=True)
    assert paid.status_code == 200, paid.text
    order, payments = await order_and_payments(server, key, session["order_id"])
    assert [p["status"] for p in payments] == ["succeeded"]
    customer = order["customer"]
    assert customer["email"] == "Ada@example.com"  # the domain lower-cased, the local part as typed
    assert customer["name"] == "Ada Lovelace"
    assert customer["phone"] == "+49301234567"  # national to the billing country, kept as E.164
    assert customer["billing_address"]["country"] == "DE" and customer["billing_address"]["postal_code"] == "10117"
    assert customer["shipping_address"]["city"] == "PARIS"  # as the French format writes it
    assert order["custom_fields"] == {"gift_note": "Happy birthday", "wrap": "box"}
    assert order["customer_email"] == "Ada@example.com"
    async with server.async_client(key) as owner:
        events = (await owner.get(f"/v1/orders/{order['id']}/events")).json()["data"]
    paid_event = next(e for e in events if e["type"] == "order.paid")
    assert paid_event["data"]["object"]["customer"] == customer
    assert paid_event["data"]["object"]["custom_fields"] == order["custom_fields"]


async def test_customer_email_on_the_order_prefills_email(server, shop):
    _, key = shop
    session = await new_session(server, key, order=dict(ORDER, customer_email="grace@example.com"),
                                collect={"email": "required"})
    paid = await confirm(server, session)  # no email typed: the order's own stands in
    assert paid.status_code == 200, paid.text
    order, _ = await order_and_payments(server, key, session["order_id"])
    assert order["customer"]["email"] == "grace@example.com"


async def test_a_form_refused_for_its_fields_counts_toward_no_limit(server, shop):
    """A form refused for its fields is no attempt: it neither reaches the processor nor counts toward
    the session's card testing limit."""
    _, key = shop
    session = await new_session(server, key, collect={"email": "required"})
    for _ in range(12):  # past the 10 failed attempts a session may have in an hour
        refused = await confirm(server, session, customer={"email": "nope"})
        assert refused.status_code == 400 and refused.json()["code"] == "invalid_field"
    _, payments = await order_and_payments(server, key, session["order_id"])
    assert payments == []
    paid = await confirm(server, session, customer={"email": "ok@example.com"})
    assert paid.status_code == 200, paid.text


async def test_payment_links_collect_too(server, shop):
    _, key = shop
    async with server.async_client(key) as owner:
        order = (await owner.post("/v1/orders", json=ORDER)).json()
        link = await owner.post("/v1/payment_links", json={
            "order": order["id"], "collect": {"phone": "required", "billing_address": "country"},
            "custom_fields": [GIFT[0]]})
        assert link.status_code == 200, link.text
        body = link.json()
        refused = await owner.post("/v1/payment_links", json={"order": order["id"],
                                                               "collect": {"billing_address": "street"}})
    assert body["collect"]["phone"] == "required" and body["collect"]["billing_address"] == "country"
    assert [f["key"] for f in body["custom_fields"]] == ["gift_note"]
    assert refused.status_code == 400 and refused.json()["param"] == "collect.billing_address"
