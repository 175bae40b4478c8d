"""Proves the browser tooling end to end (Chromium, the servers, axe-core, screenshots) without the
hosted pages, which are still being built."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from .helpers import assert_accessible, axe_violations, screenshot


def test_the_shop_page_renders_is_accessible_and_is_screenshotted(page: Page, server, shop, checkout_session):
    # Flint is up, and a hosted checkout session made through its HTTP API sends the buyer back to
    # the shop, on another origin.
    assert checkout_session["status"] == "open" and checkout_session["mode"] == "hosted"
    assert checkout_session["url"] == f"{server.url}/checkout/{checkout_session['id']}"
    assert checkout_session["success_url"] == f"{shop.url}/thanks"
    assert not shop.url.startswith(server.url)

    page.goto(shop.url + "/")
    expect(page).to_have_title("Shop · Acme Coffee")
    expect(page.get_by_role("heading", level=1)).to_have_text("Fresh coffee, roasted to order")
    assert_accessible(page)
    mobile, desktop = screenshot(page, "shop-home")
    for png in (mobile, desktop):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert page.viewport_size == {"width": 1280, "height": 900}  # put back after the screenshots

    # Where a successful checkout will land the buyer.
    page.goto(checkout_session["success_url"] + "?session_id=" + checkout_session["id"])
    expect(page.get_by_role("heading", level=1)).to_have_text("Thank you for your order")
    assert_accessible(page)
    assert shop.visits("/thanks")[-1].query == {"session_id": checkout_session["id"]}


def test_the_shop_page_works_with_javascript_off(new_context, shop):
    context = new_context(java_script_enabled=False)
    page = context.new_page()
    page.goto(shop.url + "/")
    expect(page).to_have_title(re.compile("Acme Coffee"))
    expect(page.get_by_role("main")).to_contain_text("Espresso beans, 1 kg")
    page.get_by_role("link", name="Cart").click()
    expect(page).to_have_url(shop.url + "/cart")
    expect(page.get_by_role("heading", level=1)).to_have_text("Your cart")


INACCESSIBLE = """<!doctype html><html><head></head><body>
<img src="data:image/gif;base64,R0lGODlhAQABAAAAACw=">
<form><input type="text"><button></button></form></body></html>"""


def test_assert_accessible_reports_serious_violations_even_under_a_strict_csp(page: Page, shop):
    """The helper itself: it must fail on a bad page, and inject axe-core into a page whose
    Content-Security-Policy refuses inline scripts (as Flint's payment pages will)."""
    url = shop.url + "/csp-fixture"
    page.route(url, lambda route: route.fulfill(
        status=200, content_type="text/html", body=INACCESSIBLE,
        headers={"Content-Security-Policy": "default-src 'none'; script-src 'self'"}))
    page.goto(url)
    found = {v["id"] for v in axe_violations(page)}
    assert {"button-name", "image-alt", "label"} <= found, found
    with pytest.raises(AssertionError, match=r"\[critical\] button-name"):
        assert_accessible(page)
