"""What a buyer of the demo shop does and types: the test cards (docs/testing.md has the table), the details
the shop's checkout asks for (an email and a shipping address in DE, FR or US), and pressing "Buy now"."""
from __future__ import annotations

import re

from playwright.sync_api import Page, expect

SUCCESS = "4242 4242 4242 4242"
DECLINE = "4000 0000 0000 0002"
THREE_D_SECURE = "4000 0027 6000 3184"

# The shop's fields in Flint's card frame, by their accessible names (FlintCheckout.fill).
DETAILS = {"email": "ada@example.com", "shipping_country": "DE", "shipping_address_line1": "Unter den Linden 1",
           "shipping_city": "Berlin", "shipping_postal_code": "10117"}


def buy(page: Page, origin: str) -> str:
    """The shop's front page at ``origin``, "Buy now", and its checkout page; returns the session's id."""
    page.goto(origin + "/")
    page.get_by_role("button", name="Buy now").click()
    expect(page).to_have_url(re.compile(re.escape(origin) + r"/pay/cs_\w+$"))
    return page.url.rsplit("/", 1)[1]


def success_url(origin: str, session_id: str) -> str:
    return f"{origin}/success?session_id={session_id}"
