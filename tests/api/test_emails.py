"""Email to buyers over real HTTP (docs/api.md 16), against a live ``flint serve`` whose worker sends to a real
SMTP server in this test process (aiosmtpd): the merchant's ``receipts`` setting, the session's
``recovery.email``, ``POST /v1/payment_links/{id}/send`` (202, Idempotency-Key, its refusals, apps' scopes),
``GET /v1/emails`` and ``GET /v1/emails/{id}`` (each merchant sees only its own); and end to end: a link
sent by email is paid from the mail, and that payment's receipt arrives once, in the buyer's language."""
from __future__ import annotations

import asyncio
import re
import secrets
import time
from email import message_from_bytes
from email import policy as email_policy

import httpx
import pytest
from aiosmtpd.controller import Controller

from flint.runtime import Runtime
from support import free_port
from support.server import start_server, stop_server

from ..security.partner import installed_app, new_shop

ORDER = {"currency": "usd", "line_items": [{"name": "Beans", "quantity": 2, "unit_amount": 1250}]}
CARD = {"number": "4242 4242 4242 4242", "exp_month": 12, "exp_year": 2034, "cvc": "123"}


class Sink:
    """What the SMTP server received: each message as a mail client reads it, with its envelope."""

    def __init__(self) -> None:
        self.received: list[tuple[list[str], object]] = []

    async def handle_DATA(self, server, session, envelope):
        message = message_from_bytes(envelope.original_content or envelope.content, policy=email_policy.default)
        self.received.append((list(envelope.rcpt_tos), message))
        return "250 OK"

    def to(self, address: str) -> list:
        return [message for rcpt, message in self.received if address in rcpt]

    async def wait_for(self, address: str, count: int = 1, timeout: float = 20) -> list:
        deadline = time.monotonic() + timeout
        while len(self.to(address)) < count:
            assert time.monotonic() < deadline, f"no mail to {address} within {timeout} s: {self.received}"
            await asyncio.sleep(0.05)
        return self.to(address)


@pytest.fixture(scope="module")
def smtp():
    sink = Sink()
    controller = Controller(sink, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield sink, controller.port
    controller.stop()


@pytest.fixture(scope="module")
def mail_server(smtp, tmp_path_factory):
    """``flint serve`` with mail configured: its worker sends to the SMTP server above."""
    _, port = smtp
    live = start_server(tmp_path_factory.mktemp("mail-server"), extra_env={
        "FLINT_SMTP_URL": f"smtp://127.0.0.1:{port}", "FLINT_MAIL_FROM": "Flint Mail <mail@flint.example>",
        "FLINT_MAIL_POLL_INTERVAL": "0.05", "FLINT_MAIL_RETRY_SCHEDULE": "0.5"})
    yield live
    stop_server(live)


@pytest.fixture
async def mail_rt(mail_server):
    runtime = await Runtime.start(mail_server.runtime_config())
    yield runtime
    await runtime.stop()


@pytest.fixture
async def shop(mail_rt):
    """(merchant, key) on the mail server, and a client with the key."""
    merchant, key = await new_shop(mail_rt)
    return merchant, key


def text_of(message) -> str:
    return message.get_body(preferencelist=("plain",)).get_content()


def buyer() -> str:
    return f"buyer-{secrets.token_hex(4)}@example.com"


async def _link(client: httpx.AsyncClient) -> tuple[dict, dict]:
    order = (await client.post("/v1/orders", json=ORDER)).json()
    link = (await client.post("/v1/payment_links", json={"order": order["id"]})).json()
    return order, link


# -- the settings ----------------------------------------------------------------------------------------------

async def test_the_merchants_receipts_setting_is_read_and_written_through_the_api(mail_server, shop):
    _, key = shop
    async with mail_server.async_client(key) as client:
        assert (await client.get("/v1/merchant")).json()["receipts"] is False
        on = await client.post("/v1/merchant", json={"receipts": True})
        assert on.status_code == 200 and on.json()["receipts"] is True
        assert (await client.get("/v1/merchant")).json()["receipts"] is True
        for bad in ("yes", 1, None):
            refused = await client.post("/v1/merchant", json={"receipts": bad})
            if bad is None:  # null is "leave as it is", as for the other settings
                assert refused.status_code == 200 and refused.json()["receipts"] is True
                continue
            assert refused.status_code == 400 and refused.json()["param"] == "receipts", refused.text
        off = await client.post("/v1/merchant", json={"receipts": False, "brand_color": "#123456"})
        assert off.json()["receipts"] is False and off.json()["brand_color"] == "#123456"


async def test_the_sessions_recovery_email_is_validated_and_shown(mail_server, shop):
    _, key = shop
    body = {"order": ORDER, "mode": "embedded", "success_url": "https://shop.example/thanks"}
    async with mail_server.async_client(key) as client:
        plain = (await client.post("/v1/checkout/sessions", json=body)).json()
        assert plain["recovery"]["email"] is False
        made = await client.post("/v1/checkout/sessions", json={**body, "recovery": {"enabled": True, "email": True}})
        assert made.status_code == 200 and made.json()["recovery"]["email"] is True
        assert (await client.get(f"/v1/checkout/sessions/{made.json()['id']}")).json()["recovery"]["email"] is True
        for bad in ("yes", 1, None, {"on": True}):
            refused = await client.post("/v1/checkout/sessions", json={**body, "recovery": {"enabled": True, "email": bad}})
            assert refused.status_code == 400, refused.text
            assert (refused.json()["code"], refused.json()["param"]) == ("parameter_invalid_type", "recovery.email")


# -- POST /v1/payment_links/{id}/send --------------------------------------------------------------------------

async def test_a_link_sent_by_email_arrives_once_and_pays_its_order_with_a_receipt(mail_server, shop, smtp):
    sink, _ = smtp
    merchant, key = shop
    to = buyer()
    async with mail_server.async_client(key) as client:
        await client.post("/v1/merchant", json={"receipts": True})
        order = (await client.post("/v1/orders", json={**ORDER, "customer_email": to})).json()
        link = (await client.post("/v1/payment_links", json={"order": order["id"]})).json()
        headers = {"Idempotency-Key": secrets.token_hex(8)}
        sent = await client.post(f"/v1/payment_links/{link['id']}/send", json={"email": to.upper(), "locale": "de"},
                                 headers=headers)
        assert sent.status_code == 202, sent.text
        email = sent.json()
        assert set(email) == {"id", "object", "kind", "to", "status", "attempts", "order", "payment_link", "locale",
                              "last_error", "created_at", "sent_at"}
        assert (email["object"], email["kind"], email["to"], email["locale"]) == ("email", "payment_link", to, "de")
        assert (email["order"], email["payment_link"], email["status"]) == (order["id"], link["id"], "pending")
        assert email["id"].startswith("em_")
        # The same request again (a retry): the first answer, byte for byte, and no second mail.
        again = await client.post(f"/v1/payment_links/{link['id']}/send", json={"email": to.upper(), "locale": "de"},
                                  headers=headers)
        assert again.status_code == 202 and again.headers["idempotent-replayed"] == "true"
        assert again.content == sent.content

        [mailed] = await sink.wait_for(to)
        assert mailed["Message-ID"] == f"<{email['id']}@flint.example>"
        assert link["url"] in text_of(mailed)
        # The worker recorded it: sent, one attempt.
        for _ in range(100):
            stored = (await client.get(f"/v1/emails/{email['id']}")).json()
            if stored["status"] == "sent":
                break
            await asyncio.sleep(0.05)
        assert (stored["status"], stored["attempts"]) == ("sent", 1) and stored["sent_at"]

    # The buyer opens the link in the mail and pays on its page, in French.
    url = re.search(r"https?://\S+/pay/plink_\w+", text_of(mailed)).group(0)
    async with httpx.AsyncClient(follow_redirects=False, timeout=30, headers={"Accept-Language": "fr"}) as browser:
        page = await browser.get(url)
        assert page.status_code == 200
        token = re.search(r'name="form_token" value="([^"]+)"', page.text).group(1)
        paid = await browser.post(url, data={"form_token": token, "card_number": CARD["number"], "expiry": "12 / 34",
                                             "cvc": "123"})
        assert paid.status_code == 303, paid.text

    received = await sink.wait_for(to, count=2)
    await asyncio.sleep(1.0)  # and nothing more comes
    assert len(sink.to(to)) == 2
    receipt = received[1]
    async with mail_server.async_client(key) as client:
        listed = (await client.get("/v1/emails", params={"order": order["id"]})).json()
    assert [(e["kind"], e["locale"]) for e in listed["data"]] == [("receipt", "fr"), ("payment_link", "de")]
    assert receipt["Message-ID"] == f"<{listed['data'][0]['id']}@flint.example>"
    assert "4242" in text_of(receipt) and CARD["number"].replace(" ", "") not in receipt.as_string()
    assert merchant.name in receipt["From"]


async def test_a_paid_checkout_with_receipts_on_sends_one_receipt(mail_server, shop, smtp):
    sink, _ = smtp
    _, key = shop
    to = buyer()
    async with mail_server.async_client(key) as client:
        await client.post("/v1/merchant", json={"receipts": True})
        session = (await client.post("/v1/checkout/sessions", json={
            "order": {**ORDER, "customer_email": to}, "mode": "embedded",
            "success_url": "https://shop.example/thanks"})).json()
    headers = {"Authorization": f"Bearer {session['client_token']}", "Accept-Language": "de-DE, en;q=0.5"}
    async with httpx.AsyncClient(base_url=mail_server.url, headers=headers, timeout=30) as b:
        paid = await b.post(f"/v1/checkout/sessions/{session['id']}/confirm", json={"card": CARD})
        assert paid.status_code == 200, paid.text
        again = await b.post(f"/v1/checkout/sessions/{session['id']}/confirm", json={"card": CARD})
        assert again.status_code == 409  # paid already: no second payment, no second receipt
    [receipt] = await sink.wait_for(to)
    await asyncio.sleep(1.0)
    assert len(sink.to(to)) == 1
    async with mail_server.async_client(key) as client:
        [email] = (await client.get("/v1/emails", params={"order": session["order_id"]})).json()["data"]
    assert (email["kind"], email["locale"], email["to"]) == ("receipt", "de", to)
    assert receipt["Message-ID"] == f"<{email['id']}@flint.example>"


async def test_sending_is_refused_for_what_cannot_be_sent(mail_server, shop, mail_rt):
    _, key = shop
    _, other_key = await new_shop(mail_rt)
    async with mail_server.async_client(key) as client, mail_server.async_client(other_key) as stranger:
        _, link = await _link(client)
        send = f"/v1/payment_links/{link['id']}/send"
        # Another merchant's link, or none: 404, never telling it exists.
        for who, path in ((stranger, send), (client, "/v1/payment_links/plink_nowhere/send")):
            refused = await who.post(path, json={"email": buyer()})
            assert (refused.status_code, refused.json()["code"]) == (404, "payment_link_not_found"), refused.text
        # Not an address (syntax, no DNS), a missing or mistyped body, an unknown field or language.
        for body, code, param in (({"email": "not an address"}, "email_invalid", "email"),
                                  ({"email": "ada@"}, "email_invalid", "email"),
                                  ({}, "parameter_missing", "email"),
                                  ({"email": 7}, "parameter_invalid_type", "email"),
                                  ({"email": buyer(), "cc": "x@y.example"}, "parameter_unknown", "cc"),
                                  ({"email": buyer(), "locale": "es"}, "parameter_invalid", "locale")):
            refused = await client.post(send, json=body)
            assert (refused.status_code, refused.json()["code"], refused.json()["param"]) == (400, code, param), body
        # A link that cannot be paid is not sent: deactivated; or its order paid or canceled.
        await client.post(f"{send.removesuffix('/send')}/deactivate")
        refused = await client.post(send, json={"email": buyer()})
        assert (refused.status_code, refused.json()["code"]) == (409, "payment_link_inactive")
        canceled, canceled_link = await _link(client)
        await client.post(f"/v1/orders/{canceled['id']}/cancel")
        refused = await client.post(f"/v1/payment_links/{canceled_link['id']}/send", json={"email": buyer()})
        assert (refused.status_code, refused.json()["code"]) == (409, "order_canceled")
        assert (await client.get("/v1/emails")).json()["data"] == []  # nothing refused was written
        assert (await stranger.get("/v1/emails")).json()["data"] == []


async def test_without_mail_configured_sending_is_409_and_the_lists_are_empty(server, merchant):
    _, key = merchant
    async with server.async_client(key) as client:
        _, link = await _link(client)
        refused = await client.post(f"/v1/payment_links/{link['id']}/send", json={"email": buyer()})
        assert (refused.status_code, refused.json()["code"]) == (409, "mail_not_configured")
        assert refused.headers["content-type"].startswith("application/problem+json")
        assert (await client.get("/v1/emails")).json() == {"object": "list", "data": [], "has_more": False}


async def test_apps_send_with_payment_links_write_and_read_with_orders_read(mail_server, mail_rt, shop):
    merchant, key = shop
    writer = await installed_app(mail_server, mail_rt, shop=shop, scopes=["orders:read", "payment_links:write"])
    reader = await installed_app(mail_server, mail_rt, shop=shop, scopes=["orders:read"])
    checkout_only = await installed_app(mail_server, mail_rt, shop=shop, scopes=["checkout:write"])
    async with mail_server.async_client(key) as client:
        _, link = await _link(client)
    send = f"/v1/payment_links/{link['id']}/send"
    async with mail_server.async_client(reader.token["access_token"]) as app:
        refused = await app.post(send, json={"email": buyer()})
        assert (refused.status_code, refused.json()["code"]) == (403, "insufficient_scope")
    async with mail_server.async_client(writer.token["access_token"]) as app:
        sent = await app.post(send, json={"email": buyer()})
        assert sent.status_code == 202, sent.text
    async with mail_server.async_client(reader.token["access_token"]) as app:
        assert (await app.get(f"/v1/emails/{sent.json()['id']}")).json()["id"] == sent.json()["id"]
        assert [e["id"] for e in (await app.get("/v1/emails")).json()["data"]] == [sent.json()["id"]]
    async with mail_server.async_client(checkout_only.token["access_token"]) as app:
        for path in ("/v1/emails", f"/v1/emails/{sent.json()['id']}"):
            refused = await app.get(path)
            assert (refused.status_code, refused.json()["code"]) == (403, "insufficient_scope")
    # Who sent it is in the merchant's audit trail (docs/api.md 15).
    async with mail_rt.db.read() as conn:
        row = await conn.fetch_one("SELECT actor_type, actor_id, object_id FROM audit_log WHERE merchant_id = :m "
                                   "AND action = 'payment_link.sent'", {"m": merchant.id})
    assert (row["actor_type"], row["object_id"]) == ("app", link["id"])


# -- GET /v1/emails ------------------------------------------------------------------------------------------

async def test_emails_are_listed_by_order_paged_and_each_merchant_sees_only_its_own(mail_server, mail_rt, shop):
    _, key = shop
    _, other_key = await new_shop(mail_rt)
    async with mail_server.async_client(key) as client, mail_server.async_client(other_key) as stranger:
        first_order, first = await _link(client)
        second_order, second = await _link(client)
        made = []
        for link in (first, second, first):
            answer = await client.post(f"/v1/payment_links/{link['id']}/send", json={"email": buyer()})
            made.append(answer.json()["id"])
        mine = (await client.get("/v1/emails")).json()
        assert [e["id"] for e in mine["data"]] == made[::-1] and mine["has_more"] is False
        by_order = (await client.get("/v1/emails", params={"order": first_order["id"]})).json()
        assert [e["id"] for e in by_order["data"]] == [made[2], made[0]]
        page = (await client.get("/v1/emails", params={"limit": 1})).json()
        assert [e["id"] for e in page["data"]] == [made[2]] and page["has_more"] is True
        rest = (await client.get("/v1/emails", params={"limit": 2, "starting_after": made[2]})).json()
        assert [e["id"] for e in rest["data"]] == [made[1], made[0]] and rest["has_more"] is False
        assert (await client.get(f"/v1/emails/{made[1]}")).json()["order"] == second_order["id"]
        for bad in ({"limit": 0}, {"limit": 101}, {"starting_after": "em_nowhere"}, {"colour": "red"}):
            assert (await client.get("/v1/emails", params=bad)).status_code == 400, bad
        # The other merchant: none of these, by id, by order or as a cursor.
        assert (await stranger.get("/v1/emails")).json()["data"] == []
        assert (await stranger.get("/v1/emails", params={"order": first_order["id"]})).json()["data"] == []
        for email_id in made:
            refused = await stranger.get(f"/v1/emails/{email_id}")
            assert (refused.status_code, refused.json()["code"]) == (404, "email_not_found")
        refused = await stranger.get("/v1/emails", params={"starting_after": made[0]})
        assert (refused.status_code, refused.json()["code"]) == (400, "starting_after_invalid")
