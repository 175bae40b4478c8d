"""Drop-off recovery and payment links in real Chromium (docs/api.md 4, 5, 7 and 9).

The buyer types into the embedded card form on the demo shop's origin (examples/shop) and leaves; the
sweeper (every 0.5 s in the e2e server) gives the session one recovery link to the same order; the
buyer pays through that link in another browser; the old session's widget then answers "already
paid". Then the payment link page on its own: 3-D Secure, a deactivated link, an unknown one, and
JavaScript off. Every result is checked through Flint's API as well as on the page."""
from __future__ import annotations

import json
import re
import time
from typing import Any, Callable

from playwright.sync_api import Page, expect

from .helpers import answer_challenge, assert_accessible, pay, screenshot
from .widget import EVENTS, card_frame, events, wait_for_event

SUCCESS = "4242 4242 4242 4242"
THREE_DS = "4000 0027 6000 3184"
WAIT = 15  # seconds: the longest any step here may take
LINE_ITEMS = [{"name": "Espresso beans 1 kg", "quantity": 2, "unit_amount": 2400}]

# The demo shop's own page has no event recorder (its CSP allows only its nonce'd scripts); an init
# script is not subject to the page's CSP, and Flint's events bubble to the document.
RECORDER_JS = """
window.flintEvents = [];
%s.forEach(function (name) {
  document.addEventListener(name, function (event) {
    window.flintEvents.push({type: name, target: event.target.id, detail: event.detail});
  });
});
""" % json.dumps(list(EVENTS))


def eventually(what: str, probe: Callable[[], Any], timeout: float = WAIT) -> Any:
    """Polls ``probe`` until it returns something truthy (and returns that), for at most ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        assert time.monotonic() < deadline, f"{what}: not within {timeout} s"
        time.sleep(0.2)


def ok(response) -> dict:
    assert response.is_success, f"{response.request.method} {response.request.url}: {response.status_code} {response.text}"
    return response.json()


def order_events(merchant, order_id: str) -> list[dict]:
    return ok(merchant.api.get(f"/v1/orders/{order_id}/events", params={"limit": 100}))["data"]


def payments_of(merchant, order_id: str) -> list[dict]:
    return ok(merchant.api.get("/v1/payments", params={"order": order_id}))["data"]


def new_order(merchant) -> dict:
    return ok(merchant.api.post("/v1/orders", json={"currency": "usd", "line_items": LINE_ITEMS}))


def new_link(merchant, order_id: str) -> dict:
    link = ok(merchant.api.post("/v1/payment_links", json={"order": order_id}))
    assert (link["object"], link["order_id"], link["source"], link["active"]) == (
        "payment_link", order_id, "manual", True)
    return link


def receipt_url(server, link: dict) -> str:
    return f"{server.url}/pay/{link['id']}/receipt"


def assert_paid_once_through(merchant, order_id: str, link: dict, amount: int) -> dict:
    order = ok(merchant.api.get(f"/v1/orders/{order_id}"))
    assert (order["status"], order["amount_paid"]) == ("paid", amount), order
    succeeded = [p for p in payments_of(merchant, order_id) if p["status"] == "succeeded"]
    assert len(succeeded) == 1, succeeded
    assert (succeeded[0]["channel"], succeeded[0]["payment_link_id"], succeeded[0]["amount"]) == (
        "payment_link", link["id"], amount), succeeded[0]
    assert [e["type"] for e in order_events(merchant, order_id)].count("order.paid") == 1
    return succeeded[0]


# -- the scenario ----------------------------------------------------------------------------

def test_a_buyer_who_left_the_demo_shop_pays_through_the_recovery_link(page: Page, new_context, demo_shop, server,
                                                                       merchant):
    """Typed in the widget on the demo shop's origin, left → one recovery link (session field and
    events) → paid in a new browser context → the order is paid once, and the old session's widget
    on the demo shop answers "already paid"."""
    # examples/shop's POST /checkout does not ask for recovery, so the merchant's backend opens the
    # session (as the shop does, plus recovery) and the buyer meets it on the shop's own /pay page.
    session = ok(merchant.api.post("/v1/checkout/sessions", json={
        "order": {"currency": "usd", "line_items": LINE_ITEMS},
        "mode": "embedded",
        "success_url": f"{demo_shop.url}/success?session_id={{CHECKOUT_SESSION_ID}}",
        "cancel_url": f"{demo_shop.url}/",
        "recovery": {"enabled": True, "abandon_after": 5},
    }))
    assert session["recovery"]["enabled"] and session["recovery"]["abandon_after"] == 5
    assert session["recovery"]["payment_link_id"] is None
    session_id, order_id = session["id"], session["order_id"]
    shop_checkout = f"{demo_shop.url}/pay/{session_id}"

    # An older tab of the same checkout stays open in the background (the buyer will try it last).
    page.context.add_init_script(RECORDER_JS)
    old_tab = page.context.new_page()
    old_tab.goto(shop_checkout)
    wait_for_event(old_tab, "flint:ready", timeout=WAIT * 1000)

    # The buyer starts typing a card in the widget, then leaves for the shop's front page.
    page.goto(shop_checkout)
    wait_for_event(page, "flint:ready", timeout=WAIT * 1000)
    card_frame(page).get_by_role("textbox", name="Card number", exact=True).fill("4242 42")
    page.wait_for_timeout(200)  # the frame's "interacted" message reaches the loader
    page.goto(demo_shop.url + "/")  # pagehide: the loader's beacon

    def dropped_off():
        current = ok(merchant.api.get(f"/v1/checkout/sessions/{session_id}"))
        return current if current["recovery"]["payment_link_id"] else None

    session = eventually("the recovery link on the session", dropped_off)
    recovery = session["recovery"]
    assert recovery["drop_off_reason"] == "left", recovery
    assert recovery["dropped_off_at"], recovery
    assert session["status"] == "open"
    link = ok(merchant.api.get(f"/v1/payment_links/{recovery['payment_link_id']}"))
    assert (link["order_id"], link["source"], link["checkout_session_id"], link["active"]) == (
        order_id, "recovery", session_id, True), link
    assert link["url"] == f"{server.url}/pay/{link['id']}"

    # Announced: the drop-off, then the link (with its url), once each, on the same order.
    recorded = order_events(merchant, order_id)
    types = [e["type"] for e in recorded]
    assert types.count("checkout.session.abandoned") == 1 and types.count("payment_link.created") == 1, types
    abandoned = next(e for e in recorded if e["type"] == "checkout.session.abandoned")
    created = next(e for e in recorded if e["type"] == "payment_link.created")
    assert abandoned["sequence"] < created["sequence"]
    assert abandoned["data"]["object"]["id"] == session_id
    assert abandoned["data"]["object"]["recovery"]["payment_link_id"] == link["id"]
    assert created["data"]["object"]["id"] == link["id"]
    assert created["data"]["object"]["url"] == link["url"]
    assert created["actor"]["type"] == "system"
    by_type = ok(merchant.api.get("/v1/events", params={"type": "payment_link.created", "limit": 100}))["data"]
    assert created["id"] in [e["id"] for e in by_type]
    links = ok(merchant.api.get("/v1/payment_links", params={"order": order_id}))["data"]
    assert [one["id"] for one in links] == [link["id"]], "one recovery link, never a second"

    # Later: the buyer opens the link somewhere else (a new browser context: no cookies, no history).
    buyer = new_context().new_page()
    buyer.goto(link["url"])
    expect(buyer.get_by_role("button", name=re.compile(r"^Pay"))).to_contain_text("$48.00")
    assert_accessible(buyer)
    screenshot(buyer, "payment-link")
    pay(buyer, SUCCESS)
    expect(buyer).to_have_url(receipt_url(server, link), timeout=WAIT * 1000)
    expect(buyer.get_by_role("heading", level=1)).to_have_text("Payment received")
    assert_paid_once_through(merchant, order_id, link, 4800)

    # The link again: the receipt, never a second form.
    buyer.goto(link["url"])
    expect(buyer.get_by_role("heading", level=1)).to_have_text("This order has already been paid")
    expect(buyer.get_by_role("textbox", name="Card number", exact=True)).to_have_count(0)
    assert_accessible(buyer)
    screenshot(buyer, "payment-link-already-paid")

    # Back in the first browser, the old tab's widget answers "already paid" when the buyer tries it.
    old_frame = card_frame(old_tab)
    old_frame.get_by_role("textbox", name="Card number", exact=True).fill(SUCCESS)
    old_frame.get_by_role("textbox", name="Expiry (MM / YY)", exact=True).fill("12 / 34")
    old_frame.get_by_role("textbox", name="CVC", exact=True).fill("123")
    old_frame.get_by_role("button", name=re.compile(r"^Pay")).click()
    expect(old_frame.get_by_role("alert")).to_have_text("This order has already been paid.")
    error = wait_for_event(old_tab, "flint:error", timeout=WAIT * 1000)
    assert error["target"] == "checkout"
    assert error["detail"]["code"] == "order_already_paid", error
    assert not events(old_tab, "flint:complete")
    # The session itself is complete with its order (it will not "expire" later), so the shop's
    # checkout page for it now sends the buyer to the order's status.
    assert ok(merchant.api.get(f"/v1/checkout/sessions/{session_id}"))["status"] == "complete"
    page.goto(shop_checkout)
    expect(page.locator("#order-status")).to_have_text("paid")

    # Still paid once, and still one recovery link after more sweeps.
    time.sleep(1)
    assert_paid_once_through(merchant, order_id, link, 4800)
    links = ok(merchant.api.get("/v1/payment_links", params={"order": order_id}))["data"]
    assert [one["id"] for one in links] == [link["id"]]


# -- the payment link page ---------------------------------------------------------------------------

def test_a_manual_link_pays_with_3d_secure_and_lands_on_its_receipt(page: Page, server, merchant):
    order = new_order(merchant)
    link = new_link(merchant, order["id"])
    assert link["url"] == f"{server.url}/pay/{link['id']}"
    created = [e for e in order_events(merchant, order["id"]) if e["type"] == "payment_link.created"]
    assert [e["data"]["object"]["url"] for e in created] == [link["url"]]

    page.goto(link["url"])
    pay(page, THREE_DS)
    expect(page).to_have_url(re.compile(re.escape(f"{server.url}/pay/{link['id']}/challenge/") + r"pay_\w+$"))
    answer_challenge(page, approve=True)
    expect(page).to_have_url(receipt_url(server, link), timeout=WAIT * 1000)
    expect(page.get_by_role("heading", level=1)).to_have_text("Payment received")
    payment = assert_paid_once_through(merchant, order["id"], link, 4800)
    assert payment["card"]["last4"] == "3184"


def test_a_deactivated_link_and_an_unknown_one_get_honest_pages(page: Page, server, merchant):
    link = new_link(merchant, new_order(merchant)["id"])
    done = ok(merchant.api.post(f"/v1/payment_links/{link['id']}/deactivate"))
    assert done["active"] is False

    response = page.goto(link["url"])
    assert response is not None and response.status == 410
    expect(page.get_by_role("heading", level=1)).to_have_text("This payment link is no longer active")
    expect(page.get_by_role("button", name=re.compile(r"^Pay"))).to_have_count(0)
    assert_accessible(page)

    response = page.goto(f"{server.url}/pay/plink_0000000000000000000000")
    assert response is not None and response.status == 404
    assert response.headers["content-type"].startswith("text/html")
    expect(page.get_by_role("heading", level=1)).to_have_text("Page not found")
    expect(page.get_by_role("main")).to_contain_text("not valid")
    assert_accessible(page)


def test_the_link_page_pays_with_javascript_off(new_context, server, merchant):
    order = new_order(merchant)
    link = new_link(merchant, order["id"])
    page = new_context(java_script_enabled=False).new_page()
    page.goto(link["url"])
    pay(page, SUCCESS)
    expect(page).to_have_url(receipt_url(server, link), timeout=WAIT * 1000)
    expect(page.get_by_role("heading", level=1)).to_have_text("Payment received")
    assert_paid_once_through(merchant, order["id"], link, 4800)
