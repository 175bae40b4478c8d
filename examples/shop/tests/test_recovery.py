"""A buyer who abandons the shop's checkout unpaid pays later through the recovery link Flint makes for the
order (docs/api.md 7). The shop asks for recovery after 15 minutes (RECOVERY_AFTER); the test clock
(``flint_server.advance_clock``) skips them, so the whole story takes seconds."""
from __future__ import annotations

from playwright.sync_api import Page, expect

from flint.testing import FlintCheckout

from .buyer import DETAILS, SUCCESS, buy, success_url
from .conftest import RECOVERY_AFTER


def test_a_buyer_who_walked_away_pays_through_the_recovery_link(page: Page, new_context, shop, flint_server,
                                                               flint_webhooks):
    session_id = buy(page, shop.url)
    # An older tab of the same checkout stays open in the background; the buyer tries it last.
    old_tab = page.context.new_page()
    old_tab.goto(page.url)
    old_checkout = FlintCheckout(old_tab)

    # The buyer types, then walks away from the screen; nothing happens for 15 minutes. (Not to another page:
    # leaving, the widget would send Flint a beacon, and the 15 minutes would count from its arrival, which
    # could come after the clock moved. e2e/test_widget.py shows the beacon.)
    FlintCheckout(page).fill(card=SUCCESS, **DETAILS)
    advanced = flint_server.advance_clock(RECOVERY_AFTER + 1)
    assert advanced["offset_seconds"] >= RECOVERY_AFTER + 1

    # Flint made a recovery link for the order and told the shop's backend, which sends it to the buyer.
    # (Other checkouts left open on this Flint get theirs in the same sweep: this one's is picked out.)
    created = flint_webhooks.wait_for("payment_link.created",
                                      where=lambda event: event["data"]["object"]["checkout_session_id"] == session_id)
    link = created["data"]["object"]
    assert (link["source"], link["active"]) == ("recovery", True)
    with flint_server.client() as api:
        session = api.get(f"/v1/checkout/sessions/{session_id}").json()
    assert session["recovery"]["payment_link_id"] == link["id"]
    assert session["status"] == "open"  # abandoned, not closed: the old tab could still pay

    # Later, somewhere else (a new browser context: no cookies, no history), the buyer opens the link.
    buyer = new_context().new_page()
    hosted = FlintCheckout.hosted(buyer, link["url"])
    hosted.fill(card=SUCCESS, **DETAILS)  # what was typed in the widget left with the buyer
    hosted.pay()
    expect(buyer).to_have_url(f"{link['url']}/receipt")
    expect(buyer.get_by_role("heading", level=1)).to_have_text("Payment received")
    paid = flint_webhooks.wait_for("order.paid", order_id=session["order_id"])
    assert paid["data"]["object"]["amount_paid"] == 2400
    with flint_server.client() as api:
        payments = api.get("/v1/payments", params={"order": session["order_id"]}).json()["data"]
    assert [(p["status"], p["channel"], p["payment_link_id"]) for p in payments] == [
        ("succeeded", "payment_link", link["id"])]

    # The old tab's widget now refuses a second payment, and the shop's checkout page shows the order paid.
    old_checkout.fill(card=SUCCESS, **DETAILS)
    old_checkout.pay()
    assert old_checkout.error_text() == "This order has already been paid."
    page.goto(f"{shop.url}/pay/{session_id}")
    expect(page).to_have_url(success_url(shop.url, session_id))
    expect(page.locator("#order-status")).to_have_text("paid")
