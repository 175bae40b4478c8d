"""The recovery email in real Chromium (docs/api.md 7 and 16; issue 17, "How it must be shown").

A live ``flint serve`` sends mail to a real SMTP server in this test process (aiosmtpd, support/smtp.py). The
merchant's backend opens a session with ``recovery: {enabled: true, email: true}`` for an order that knows the
buyer's address; the buyer types in the embedded card form on the merchant's page and leaves. The sweeper gives
the session its recovery link, and the worker emails it: the mail arrives once, in English (the language the
buyer's page spoke), with List-Unsubscribe, and the link in its text part. Opened in a NEW browser context (no
cookies, no history: the buyer's phone, later), the link pays the order; GET /v1/recovery/summary counts the
drop-off, the link and the recovery. The merchant's console lists the mail on the order's page (axe clean)."""
from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, expect

from flint.runtime import Runtime
from support.factories import make_merchant
from support.server import start_server, stop_server
from support.smtp import SmtpServer

from .conftest import run_async
from .helpers import assert_accessible, pay, screenshot
from .widget import card_frame, merchant_page, script_tag, wait_for_event

SUCCESS = "4242 4242 4242 4242"
WAIT = 20  # seconds: the longest any step here may take (5 s of abandon_after, sweeps every 0.5 s)
BUYER = "ada.lovelace@buyer.example"
MERCHANT_PASSWORD = "correct horse battery"  # support.factories.make_merchant's
LINE_ITEMS = [{"name": "Espresso beans 1 kg", "quantity": 2, "unit_amount": 2400}]


@pytest.fixture(scope="module")
def smtp():
    server = SmtpServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def mail_server(smtp: SmtpServer, tmp_path_factory: pytest.TempPathFactory):
    """``flint serve`` (sweeps every 0.5 s) whose mail worker sends to ``smtp``."""
    live = start_server(tmp_path_factory.mktemp("e2e-mail"), extra_env={
        "FLINT_SMTP_URL": smtp.url, "FLINT_MAIL_FROM": "Flint E2E <mail@flint.test>",
        "FLINT_MAIL_POLL_INTERVAL": "0.05", "FLINT_MAIL_RETRY_SCHEDULE": "0.5,0.5"})
    yield live
    stop_server(live)


@pytest.fixture(scope="module")
def mail_merchant(mail_server, shop):
    """A merchant of that server whose pages (the e2e shop's origin) may embed the widget: (id, key, email)."""
    async def seed():
        runtime = await Runtime.start(mail_server.runtime_config())
        try:
            merchant, key = await make_merchant(runtime, origins=[shop.origin])
            return merchant.id, key, merchant.email, merchant.name
        finally:
            await runtime.stop()

    return run_async(seed)


@pytest.fixture
def api(mail_server, mail_merchant):
    """The merchant's backend: the API with its secret key."""
    with mail_server.client(mail_merchant[1]) as client:
        yield client


def eventually(what: str, probe: Callable[[], Any], timeout: float = WAIT) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        assert time.monotonic() < deadline, f"{what}: not within {timeout} s"
        time.sleep(0.2)


def ok(response: httpx.Response) -> dict:
    assert response.is_success, f"{response.request.method} {response.request.url}: {response.status_code} {response.text}"
    return response.json()


def test_the_recovery_email_of_a_drop_off_arrives_and_its_link_pays_in_a_new_browser(
        page: Page, new_context, mail_server, mail_merchant, api, shop, smtp):
    _, _, merchant_email, merchant_name = mail_merchant
    session = ok(api.post("/v1/checkout/sessions", json={
        "order": {"currency": "usd", "line_items": LINE_ITEMS, "customer_email": BUYER},
        "mode": "embedded", "success_url": f"{shop.url}/thanks", "cancel_url": f"{shop.url}/cart",
        "recovery": {"enabled": True, "abandon_after": 5, "email": True},
    }))
    assert session["recovery"] == {**session["recovery"], "enabled": True, "email": True, "payment_link_id": None}
    session_id, order_id = session["id"], session["order_id"]

    # The buyer starts typing a card in the widget on the merchant's page, then leaves for another page.
    checkout = shop.serve(f"/checkout-{session_id}", merchant_page(
        "Checkout", '<h1>Checkout</h1><div id="checkout"></div>' + script_tag(mail_server.url, session["client_token"])))
    elsewhere = shop.serve("/elsewhere", merchant_page("Elsewhere", "<h1>Elsewhere</h1>"))
    page.goto(checkout)
    wait_for_event(page, "flint:ready", timeout=WAIT * 1000)
    card_frame(page).get_by_role("textbox", name="Card number", exact=True).fill("4242 42")
    page.wait_for_timeout(200)  # the frame's "interacted" message reaches the loader
    page.goto(elsewhere)  # pagehide: the loader's beacon
    assert not smtp.received(), "nothing is mailed before the drop-off"

    # The sweeper makes the recovery link; the worker mails it, once.
    def dropped_off():
        current = ok(api.get(f"/v1/checkout/sessions/{session_id}"))
        return current if current["recovery"]["payment_link_id"] else None

    recovery = eventually("the recovery link", dropped_off)["recovery"]
    assert recovery["drop_off_reason"] == "left", recovery
    link = ok(api.get(f"/v1/payment_links/{recovery['payment_link_id']}"))
    assert (link["source"], link["order_id"], link["active"]) == ("recovery", order_id, True)
    [received] = eventually("the recovery email at the SMTP server", lambda: smtp.received())
    assert received.rcpt_tos == [BUYER]
    message = received.message
    assert message["Subject"] == f"You left your checkout at {merchant_name}"
    assert message["To"] == BUYER and message["Auto-Submitted"] == "auto-generated"
    assert message["List-Unsubscribe"].startswith(f"<{mail_server.url}/unsubscribe/")
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert message.get_content_type() == "multipart/alternative"
    text = message.get_body(preferencelist=("plain",)).get_content()
    found = re.findall(re.escape(mail_server.url) + r"/pay/[A-Za-z0-9_]+", text)
    assert found and set(found) == {link["url"]}, text
    assert "4242" not in text and "$48.00" in text  # the order's total, nothing of the card typed
    emails = ok(api.get("/v1/emails", params={"order": order_id}))["data"]
    assert [(e["kind"], e["to"], e["payment_link"]) for e in emails] == [("recovery", BUYER, link["id"])]

    # Later, on another device: a new browser context opens the link from the mail and pays.
    buyer = new_context().new_page()
    buyer.goto(found[0])
    expect(buyer.get_by_role("button", name=re.compile(r"^Pay"))).to_contain_text("$48.00")
    pay(buyer, SUCCESS)
    expect(buyer).to_have_url(f"{mail_server.url}/pay/{link['id']}/receipt", timeout=WAIT * 1000)
    expect(buyer.get_by_role("heading", level=1)).to_have_text("Payment received")
    order = ok(api.get(f"/v1/orders/{order_id}"))
    assert (order["status"], order["amount_paid"]) == ("paid", 4800)
    [payment] = [p for p in ok(api.get("/v1/payments", params={"order": order_id}))["data"] if p["status"] == "succeeded"]
    assert (payment["channel"], payment["payment_link_id"]) == ("payment_link", link["id"])

    # The recovery summary counts it: one drop-off (left), one link, paid, $48.00 brought back.
    summary = ok(api.get("/v1/recovery/summary"))
    assert summary["drop_offs"]["left"] == summary["drop_offs"]["total"] == 1, summary
    assert (summary["links_created"], summary["links_paid"], summary["recovery_rate"]) == (1, 1, 1.0), summary
    assert summary["amount_recovered"] == [{"currency": "usd", "amount": 4800}], summary
    # Still one mail: no second copy of the recovery email, and no receipt (the merchant has receipts off).
    time.sleep(1)
    assert len(smtp.received()) == 1
    email = ok(api.get("/v1/emails", params={"order": order_id}))["data"][0]
    assert (email["status"], email["attempts"]) == ("sent", 1), email

    # The merchant's console: the order's Emails panel lists the recovery email as sent, and so does its timeline.
    console = new_context().new_page()
    console.goto(f"{mail_server.url}/login")
    console.get_by_label("Email").fill(merchant_email)
    console.get_by_label("Password").fill(MERCHANT_PASSWORD)
    console.get_by_role("button", name="Sign in").click()
    expect(console).to_have_url(re.compile(re.escape(f"{mail_server.url}/dashboard")))
    console.goto(f"{mail_server.url}/dashboard/orders/{order_id}")
    row = console.locator(f"tr#{email['id']}")
    expect(row.locator("td")).to_have_text(["Recovery email", BUYER, "Sent", "1", re.compile(r"UTC$")])
    expect(console.locator(".timeline .what", has_text="Recovery email sent")).to_have_count(1)
    assert_accessible(console)
    console.get_by_role("heading", name="Emails").scroll_into_view_if_needed()
    screenshot(console, "console-order-emails")
