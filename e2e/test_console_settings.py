"""The console's Settings and API keys pages in real Chromium (docs/api.md 15): adding an allowed origin in
Settings makes the widget mount on a page of that origin (pasted with the exact script tag Settings shows,
SRI hash and all); removing it makes the same page fall back to the hosted link; a page of another origin
falls back all along. API keys: a key is created and shown once, and revoked. Both pages are axe clean at
390 px and 1280 px, with review screenshots; support gets 403 on API keys and reads Settings only."""
from __future__ import annotations

import itertools
import re

from playwright.sync_api import Page, expect

from flint.merchants import service as merchants
from flint.runtime import Runtime
from flint.staff import service as staff

from .conftest import run_async
from .helpers import VIEWPORTS, assert_accessible, screenshot
from .widget import FRAME_TITLE, card_frame, merchant_page, wait_for_event

PASSWORD = "a long and correct password"
PLACEHOLDER = "CLIENT_TOKEN_OF_THE_SESSION"
_counter = itertools.count(1)


def _seed(server, with_support: bool = False):
    """A merchant with no allowed origin (and its first secret key); a support member if asked."""
    async def seed():
        runtime = await Runtime.start(server.runtime_config())
        try:
            n = next(_counter)
            merchant, secret = await merchants.create_merchant(
                runtime, name="Settings Roasters", email=f"settings-e2e-{n}@shop.example", password=PASSWORD)
            support = None
            if with_support:
                async with runtime.db.transaction() as conn:
                    owner = await staff.ensure_owner(conn, merchant)
                _, token = await staff.invite(runtime, owner, f"support-settings-{n}@shop.example", "support")
                support = await staff.accept_invitation(runtime, token, PASSWORD)
            return merchant, secret, support
        finally:
            await runtime.stop()

    return run_async(seed)


def _sign_in(page: Page, server, email: str, to: str) -> None:
    page.goto(f"{server.url}/login?next={to}")
    page.get_by_role("textbox", name="Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(f"{server.url}{to}")


def _accessible_at_both_widths(page: Page) -> None:
    for size in VIEWPORTS.values():
        page.set_viewport_size(size)
        assert_accessible(page)
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), size
    page.set_viewport_size(VIEWPORTS["desktop"])


def _embedded_session(server, secret: str, shop) -> dict:
    with server.client(secret) as api:
        made = api.post("/v1/checkout/sessions", json={
            "order": {"currency": "usd", "line_items": [{"name": "Espresso beans 1 kg", "quantity": 1,
                                                          "unit_amount": 2400}]},
            "mode": "embedded", "success_url": f"{shop.url}/thanks"})
    assert made.status_code == 200, made.text
    return made.json()


def _visit(page: Page, shop, origin: str, path: str, tag: str, session: dict) -> None:
    """The merchant's checkout page at ``origin`` + ``path``, with the script tag as Settings gave it."""
    shop.serve(path, merchant_page("Checkout", '<h1>Checkout</h1><div id="checkout"></div>' +
                                   tag.replace(PLACEHOLDER, session["client_token"])))
    page.goto(origin + path)


def _mounts(page: Page) -> None:
    wait_for_event(page, "flint:ready")
    expect(card_frame(page).get_by_role("textbox", name="Card number", exact=True)).to_be_visible()


def _falls_back(page: Page, session: dict) -> None:
    fallback = wait_for_event(page, "flint:fallback")
    assert fallback["detail"] == {"url": session["url"], "reason": "frame_blocked"}
    expect(page.get_by_role("link", name="Continue to secure checkout")).to_have_attribute("href", session["url"])
    expect(page.locator(f'iframe[title="{FRAME_TITLE}"]')).to_have_count(0)


def test_an_origin_added_in_settings_mounts_the_widget_and_removed_falls_back(page: Page, context, server, shop):
    merchant, secret, _ = _seed(server)
    ours = shop.url  # http://localhost:PORT
    theirs = shop.url.replace("localhost", "127.0.0.1")  # the same shop on another origin, never added
    _sign_in(page, server, merchant.email, "/dashboard/settings")
    expect(page.get_by_role("heading", level=1)).to_have_text("Settings")
    expect(page.get_by_role("region", name="Account")).to_contain_text("Settings Roasters")
    expect(page.get_by_role("region", name="Script tags")).to_contain_text("Add an allowed origin")
    _accessible_at_both_widths(page)
    screenshot(page, "console-settings-empty")

    # A wrong origin is refused at its field, as POST /v1/merchant refuses it.
    page.get_by_role("textbox", name="Origin").fill(ours + "/checkout")
    page.get_by_role("button", name="Add origin").click()
    origin_box = page.get_by_role("textbox", name="Origin")
    expect(origin_box).to_have_attribute("aria-invalid", "true")
    expect(origin_box).to_have_accessible_description(re.compile("is not an origin like https://shop.example"))
    _accessible_at_both_widths(page)

    origin_box.fill(ours)
    page.get_by_role("button", name="Add origin").click()
    expect(page.get_by_role("status")).to_have_text(re.compile("The origin was added"))
    allowed = page.get_by_role("list", name="Allowed origins").get_by_role("listitem")
    expect(allowed).to_have_count(1)
    expect(allowed).to_contain_text(ours)
    tag_box = page.get_by_role("textbox", name=f"Script tag for {ours}")
    expect(tag_box).to_have_attribute("readonly", "")
    tag = tag_box.input_value()
    manifest = page.request.get(f"{server.url}/widget/v1/manifest.json").json()
    loader = next(item for item in manifest["files"] if item["path"].endswith("/flint.js"))
    assert f'src="{server.url}{loader["path"]}" integrity="{loader["integrity"]}" crossorigin="anonymous"' in tag
    # The brand colour, and the preview of the card form in it.
    page.get_by_role("textbox", name="Brand color").fill("#0a7c4b")
    page.get_by_role("button", name="Save colour").click()
    expect(page.get_by_role("status")).to_have_text("The brand colour was saved.")
    expect(page.get_by_role("img", name=re.compile("Pay button in #0a7c4b"))).to_be_visible()
    expect(page.locator(".preview .pay")).to_have_css("background-color", "rgb(10, 124, 75)")
    expect(page.get_by_role("textbox", name=f"Script tag for {ours}")).to_have_value(tag)
    _accessible_at_both_widths(page)
    screenshot(page, "console-settings")

    shop_page = context.new_page()
    try:
        # On the allowed origin the widget mounts, with the exact tag (its SRI hash checked by Chromium).
        session = _embedded_session(server, secret, shop)
        _visit(shop_page, shop, ours, "/settings-pay-1", tag, session)
        _mounts(shop_page)
        # The same tag on an origin never added: the hosted link.
        session = _embedded_session(server, secret, shop)
        _visit(shop_page, shop, theirs, "/settings-pay-2", tag, session)
        _falls_back(shop_page, session)

        page.get_by_role("button", name=f"Remove {ours}").click()
        expect(page.get_by_role("status")).to_have_text(re.compile("The origin was removed"))
        expect(page.get_by_role("list", name="Allowed origins")).to_have_count(0)

        # The same page on the origin just removed now falls back to the hosted link.
        session = _embedded_session(server, secret, shop)
        _visit(shop_page, shop, ours, "/settings-pay-1", tag, session)
        _falls_back(shop_page, session)
    finally:
        shop_page.close()
    expect(page.get_by_role("region", name="Script tags")).to_contain_text("Add an allowed origin")
    _accessible_at_both_widths(page)


def test_api_keys_create_once_and_revoke_and_support_is_refused(page: Page, browser, server):
    merchant, secret, support = _seed(server, with_support=True)
    _sign_in(page, server, merchant.email, "/dashboard/api_keys")
    expect(page.get_by_role("heading", level=1)).to_have_text("API keys")
    rows = page.get_by_role("table", name="Secret keys, newest first").get_by_role("row")
    expect(rows).to_have_count(2)
    expect(rows.nth(1)).to_contain_text(f"sk_test_…{secret[-4:]}")
    _accessible_at_both_widths(page)
    screenshot(page, "console-api-keys")

    page.get_by_role("button", name="Create key").click()
    shown = page.get_by_role("textbox", name="Secret key")
    expect(shown).to_have_attribute("readonly", "")
    new_secret = shown.input_value()
    assert new_secret.startswith("sk_test_") and new_secret != secret
    expect(rows).to_have_count(3)
    _accessible_at_both_widths(page)
    screenshot(page, "console-api-keys-created")
    with server.client(new_secret) as api:
        assert api.get("/v1/merchant").json()["id"] == merchant.id

    page.once("dialog", lambda dialog: dialog.accept())  # Revoke asks first (console.js)
    page.get_by_role("button", name=f"Revoke key ending {secret[-4:]}").click()
    expect(page.get_by_role("status")).to_have_text(re.compile("The key was revoked"))
    expect(page.get_by_role("textbox", name="Secret key")).to_have_count(0)  # shown once only
    with server.client(secret) as api:
        assert api.get("/v1/merchant").status_code == 401
    _accessible_at_both_widths(page)

    context = browser.new_context(viewport=VIEWPORTS["mobile"])
    try:
        theirs = context.new_page()
        _sign_in(theirs, server, support.email, "/dashboard/settings")
        expect(theirs.get_by_role("button", name="Add origin")).to_have_count(0)
        expect(theirs.get_by_text("can see the settings but not change them")).to_be_visible()
        _accessible_at_both_widths(theirs)
        response = theirs.goto(f"{server.url}/dashboard/api_keys")
        assert response is not None and response.status == 403
        expect(theirs.get_by_role("heading", level=1)).to_have_text("You do not have access to this page")
    finally:
        context.close()
