"""Payment links in real Chromium (docs/api.md 7): the payment link page on its own, with 3-D Secure, its
receipt and "already paid", a deactivated link, an unknown one, and JavaScript off. Every result is
checked through Flint's API as well as on the page.

A buyer who left a checkout and pays through its recovery link (the test clock making the drop-off, the
old tab's widget then answering "already paid") is the demo shop's own suite:
examples/shop/tests/test_recovery.py, written with the QA kit."""
from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from .helpers import answer_challenge, assert_accessible, pay, screenshot

SUCCESS = "4242 4242 4242 4242"
THREE_DS = "4000 0027 6000 3184"
WAIT = 15  # seconds: the longest any step here may take
LINE_ITEMS = [{"name": "Espresso beans 1 kg", "quantity": 2, "unit_amount": 2400}]


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


# -- the payment link page ---------------------------------------------------------------------------

def test_a_manual_link_pays_with_3d_secure_and_lands_on_its_receipt(page: Page, server, merchant):
    order = new_order(merchant)
    link = new_link(merchant, order["id"])
    assert link["url"] == f"{server.url}/pay/{link['id']}"
    created = [e for e in order_events(merchant, order["id"]) if e["type"] == "payment_link.created"]
    assert [e["data"]["object"]["url"] for e in created] == [link["url"]]

    page.goto(link["url"])
    expect(page.get_by_role("button", name=re.compile(r"^Pay"))).to_contain_text("$48.00")
    assert_accessible(page)
    screenshot(page, "payment-link")
    pay(page, THREE_DS)
    expect(page).to_have_url(re.compile(re.escape(f"{server.url}/pay/{link['id']}/challenge/") + r"pay_\w+$"))
    answer_challenge(page, approve=True)
    expect(page).to_have_url(receipt_url(server, link), timeout=WAIT * 1000)
    expect(page.get_by_role("heading", level=1)).to_have_text("Payment received")
    payment = assert_paid_once_through(merchant, order["id"], link, 4800)
    assert payment["card"]["last4"] == "3184"

    # The link again: the receipt, never a second form.
    page.goto(link["url"])
    expect(page.get_by_role("heading", level=1)).to_have_text("This order has already been paid")
    expect(page.get_by_role("textbox", name="Card number", exact=True)).to_have_count(0)
    assert_accessible(page)
    screenshot(page, "payment-link-already-paid")


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
