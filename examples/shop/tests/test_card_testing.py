"""Card testing at the shop's checkout (docs/api.md 13): ten declined attempts on one checkout, and the card
frame says when to try again; not even a good card reaches the processor then."""
from __future__ import annotations

from playwright.sync_api import Page

from flint.testing import FlintCheckout

from .buyer import DECLINE, DETAILS, SUCCESS, buy

MAX_FAILED = 10  # FLINT_MAX_FAILED_ATTEMPTS at its default


def test_after_ten_declines_the_frame_says_when_to_try_again(page: Page, shop, flint_server):
    session_id = buy(page, shop.url)
    checkout = FlintCheckout(page)
    checkout.fill(card=DECLINE, **DETAILS)  # the email and the address stay across the declines
    for _ in range(MAX_FAILED):
        checkout.pay()
        assert checkout.error_text() == "Your card was declined."
    checkout.fill(card=SUCCESS)
    checkout.pay()
    assert checkout.error_text() == "Too many payment attempts. Please try again in 60 minutes."
    with flint_server.client() as api:
        order_id = api.get(f"/v1/checkout/sessions/{session_id}").json()["order_id"]
        payments = api.get("/v1/payments", params={"order": order_id, "limit": 100}).json()["data"]
        assert api.get(f"/v1/orders/{order_id}").json()["status"] == "open"
    assert [p["status"] for p in payments] == ["failed"] * MAX_FAILED  # the good card never got through
