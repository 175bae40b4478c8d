"""The embedded widget in real Chromium: the merchant's page on one origin (the e2e shop), Flint and its card
frame on another. Every case drives the frame by role and label, as a buyer or a screen reader finds it,
and checks the result through Flint's API.

Paying, a decline then a payment, 3-D Secure approved and denied, and the fallback on an origin that is
not allowed are also the demo shop's own suite (examples/shop/tests, written with the QA kit); this file
keeps what that suite does not show: the widget's events and options, bad tokens, several widgets, a
single-page app, the keyboard, appearance, the beacon, accessibility."""
from __future__ import annotations

import re
import time

import pytest
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import Page, expect

from flint.checkout import store as session_store
from flint.runtime import Runtime
from flint.security import CLIENT_TOKEN_SALT, Signer
from support import TEST_SECRET

from .conftest import run_async
from .helpers import PAY_BUTTON, assert_accessible, screenshot
from .widget import (FRAME_TITLE, card_frame, events, fill_card, merchant_page, pay_in_frame, script_tag,
                     wait_for_event, window_listeners)

SUCCESS = "4242 4242 4242 4242"
DECLINE = "4000 0000 0000 0002"
THREE_DS = "4000 0027 6000 3184"


@pytest.fixture
def embedded(create_checkout_session):
    """An open embedded session for a $24.00 order (success_url: the shop's /thanks)."""
    return create_checkout_session(mode="embedded")


def order_of(merchant, session) -> dict:
    return merchant.api.get(f"/v1/orders/{session['order_id']}").json()


def event_types_of_order(merchant, session) -> list[str]:
    listed = merchant.api.get(f"/v1/orders/{session['order_id']}/events").json()["data"]
    return [event["type"] for event in listed]


def open_widget(page: Page, shop, server, session, path: str, **data: str) -> None:
    url = shop.serve(path, merchant_page("Checkout", '<h1>Checkout</h1><div id="checkout"></div>' +
                                         script_tag(server.url, session["client_token"], **data)))
    page.goto(url)


# -- paying ------------------------------------------------------------------------------------------

def test_the_success_card_completes_and_redirects_to_the_success_page(page: Page, shop, server, merchant, embedded):
    open_widget(page, shop, server, embedded, "/pay-success")
    ready = wait_for_event(page, "flint:ready")
    assert ready["target"] == "checkout" and ready["detail"] == {"session_id": embedded["id"]}
    frame = card_frame(page)
    expect(frame.get_by_role("button", name=PAY_BUTTON)).to_have_text("Pay $24.00")
    with page.expect_navigation(url=re.compile(re.escape(f"{shop.url}/thanks"))):
        pay_in_frame(frame, SUCCESS)
    assert shop.visits("/thanks")[-1].query == {"session_id": embedded["id"]}
    order = order_of(merchant, embedded)
    assert order["status"] == "paid" and order["amount_paid"] == 2400
    payments = merchant.api.get("/v1/payments", params={"order": embedded["order_id"]}).json()["data"]
    assert [(p["status"], p["channel"]) for p in payments] == [("succeeded", "embedded")]


def test_complete_fires_with_the_order_and_payment_and_redirect_false_stays(page: Page, shop, server, merchant,
                                                                             embedded):
    open_widget(page, shop, server, embedded, "/pay-stay", redirect="false")
    wait_for_event(page, "flint:ready")
    frame = card_frame(page)
    pay_in_frame(frame, SUCCESS)
    complete = wait_for_event(page, "flint:complete")
    payments = merchant.api.get("/v1/payments", params={"order": embedded["order_id"]}).json()["data"]
    assert complete["detail"] == {"order_id": embedded["order_id"], "payment_id": payments[0]["id"]}
    expect(frame.get_by_role("status")).to_have_text("Payment complete. Thank you!")
    assert page.url.endswith("/pay-stay")
    assert order_of(merchant, embedded)["status"] == "paid"


def test_a_decline_shows_a_message_then_the_success_card_pays_in_the_same_widget(page: Page, shop, server, merchant,
                                                                                embedded):
    open_widget(page, shop, server, embedded, "/pay-decline", redirect="false")
    wait_for_event(page, "flint:ready")
    frame = card_frame(page)
    iframe = page.locator(f'iframe[title="{FRAME_TITLE}"]')
    height = iframe.bounding_box()["height"]
    pay_in_frame(frame, DECLINE)
    expect(frame.get_by_role("alert")).to_have_text("Your card was declined.")
    assert order_of(merchant, embedded)["status"] == "open"
    # The frame grew by the message, and the iframe followed it: no inner scrollbar, no gap.
    page.wait_for_function("(h) => document.querySelector('iframe').getBoundingClientRect().height > h", arg=height)
    inner = frame.locator("html").evaluate("e => Math.ceil(e.getBoundingClientRect().height)")
    assert abs(iframe.bounding_box()["height"] - inner) <= 1
    pay_in_frame(frame, SUCCESS)
    wait_for_event(page, "flint:complete")
    assert order_of(merchant, embedded)["status"] == "paid"
    statuses = [p["status"] for p in merchant.api.get("/v1/payments", params={"order": embedded["order_id"]}).json()["data"]]
    assert sorted(statuses) == ["failed", "succeeded"]


def test_a_luhn_invalid_number_is_refused_inline_and_nothing_is_sent(page: Page, shop, server, merchant, embedded):
    open_widget(page, shop, server, embedded, "/pay-luhn")
    wait_for_event(page, "flint:ready")
    sent: list[str] = []
    page.on("request", lambda request: sent.append(request.url) if "/confirm" in request.url else None)
    frame = card_frame(page)
    pay_in_frame(frame, "4242 4242 4242 4241")
    number = frame.get_by_role("textbox", name="Card number", exact=True)
    expect(number).to_have_attribute("aria-invalid", "true")
    expect(number).to_have_accessible_description(re.compile("Your card number is not valid."))
    expect(number).to_be_focused()
    page.wait_for_timeout(300)
    assert sent == []
    assert merchant.api.get("/v1/payments", params={"order": embedded["order_id"]}).json()["data"] == []


def test_inline_messages_for_an_incomplete_card(page: Page, shop, server, embedded):
    open_widget(page, shop, server, embedded, "/pay-incomplete")
    wait_for_event(page, "flint:ready")
    frame = card_frame(page)
    fill_card(frame, "4242 4242", "13 / 20", "12")
    frame.get_by_role("button", name=PAY_BUTTON).click()
    expect(frame.locator("#card_number-error")).to_have_text("Your card number is incomplete.")
    expect(frame.locator("#expiry-error")).to_have_text("Enter the expiry date as MM / YY.")
    expect(frame.locator("#cvc-error")).to_have_text("Your card's security code is incomplete.")
    # Typing spaces the number and names the brand; fixing a field clears its message.
    number = frame.get_by_role("textbox", name="Card number", exact=True)
    number.fill("")
    number.press_sequentially("378282246310005")
    expect(number).to_have_value("3782 822463 10005")
    expect(frame.locator("#card-brand")).to_have_text("American Express")
    expect(frame.locator("#card_number-error")).to_be_hidden()


# -- where the widget may live ---------------------------------------------------------------------

def test_a_frame_that_never_gets_ready_times_out_to_the_hosted_link(page: Page, shop, server, merchant, embedded):
    # The frame's requests never answer (a network that drops them): the ready timeout decides.
    page.route(re.compile(r".*/widget/v1/frame/.*"), lambda route: None)
    open_widget(page, shop, server, embedded, "/pay-timeout", ready_timeout="1500")
    fallback = wait_for_event(page, "flint:fallback")
    assert fallback["detail"] == {"url": embedded["url"], "reason": "timeout"}
    expect(page.get_by_role("link", name="Continue to secure checkout")).to_have_attribute("href", embedded["url"])
    deadline = time.monotonic() + 10
    while merchant.api.get(f"/v1/checkout/sessions/{embedded['id']}").json()["fallback"] is None:
        assert time.monotonic() < deadline, "the fallback was not recorded"
        time.sleep(0.1)


def _forged_token(session: dict, merchant_id: str, expires: int) -> str:
    return Signer((TEST_SECRET,)).dumps(CLIENT_TOKEN_SALT, {"s": session["id"], "m": merchant_id, "e": expires})


@pytest.mark.parametrize("kind", ["tampered", "expired", "session_expired"])
def test_a_bad_client_token_fires_an_error_and_shows_no_form(page: Page, shop, server, merchant, embedded, kind):
    token = embedded["client_token"]
    expected = {"tampered": "client_token_invalid", "expired": "client_token_expired",
                "session_expired": "session_expired"}[kind]
    if kind == "tampered":
        token = token[:-3] + ("AAA" if not token.endswith("AAA") else "BBB")
    elif kind == "expired":
        token = _forged_token(embedded, merchant.id, int(time.time()) - 5)
    else:
        assert merchant.api.post(f"/v1/checkout/sessions/{embedded['id']}/expire").status_code == 200
    shop.serve(f"/bad-{kind}", merchant_page("Checkout", '<div id="checkout"></div>' + script_tag(server.url, token)))
    page.goto(f"{shop.url}/bad-{kind}")
    error = wait_for_event(page, "flint:error")
    assert error["detail"]["code"] == expected
    assert error["target"] == "checkout"
    expect(page.locator("iframe")).to_have_count(0)
    expect(page.get_by_role("textbox", name="Card number")).to_have_count(0)
    assert events(page, "flint:ready") == []


def test_the_merchant_page_cannot_read_the_card_number(page: Page, shop, server, embedded):
    open_widget(page, shop, server, embedded, "/pay-snoop")
    wait_for_event(page, "flint:ready")
    fill_card(card_frame(page), SUCCESS)
    # The merchant page's own script, trying every way in: the frame is another origin.
    attempts = page.evaluate("""() => {
        const frame = document.querySelector('iframe');
        const out = {contentDocument: frame.contentDocument === null};
        try { out.read = frame.contentWindow.document.getElementById('card_number').value; }
        catch (error) { out.error = error.name; }
        out.inPage = document.documentElement.outerHTML.includes('4242 4242');
        return out;
    }""")
    assert attempts == {"contentDocument": True, "error": "SecurityError", "inPage": False}
    # ... and the frame never posts card data to the parent: only the envelope's known types arrive.
    assert card_frame(page).get_by_role("textbox", name="Card number", exact=True).input_value() == SUCCESS


# -- several widgets, single-page apps, keyboard, appearance ------------------------------------------

def test_two_widgets_on_one_page(page: Page, shop, server, merchant, create_checkout_session):
    first, second = create_checkout_session(mode="embedded"), create_checkout_session(mode="embedded")
    url = shop.serve("/two", merchant_page("Two", '<div id="one"></div><div id="two"></div>' +
                                           script_tag(server.url, first["client_token"], "#one", redirect="false") +
                                           script_tag(server.url, second["client_token"], "#two", redirect="false")))
    page.goto(url)
    wait_for_event(page, "flint:ready", count=2)
    assert sorted(e["target"] for e in events(page, "flint:ready")) == ["one", "two"]
    assert page.evaluate("() => window.Flint.version") == 1  # two script tags, one Flint
    pay_in_frame(card_frame(page, 1), SUCCESS)
    complete = wait_for_event(page, "flint:complete")
    assert complete["target"] == "two" and complete["detail"]["order_id"] == second["order_id"]
    assert order_of(merchant, second)["status"] == "paid"
    assert order_of(merchant, first)["status"] == "open"
    expect(card_frame(page, 0).get_by_role("button", name=PAY_BUTTON)).to_be_enabled()


def test_mount_destroy_mount_in_a_single_page_app_leaks_nothing(page: Page, shop, server, merchant, embedded):
    url = shop.serve("/spa", merchant_page("SPA", f"""<div id="checkout"></div>
<script src="{server.url}/widget/v1/flint.js"></script>
<script>
window.handle = null;
window.show = async () => {{ window.handle = await Flint.mount('#checkout', {{clientToken: {embedded['client_token']!r}, redirect: false}}); }};
window.hide = () => {{ window.handle.destroy(); window.handle.destroy(); }};
</script>"""))
    page.goto(url)
    page.wait_for_function("() => window.Flint && window.Flint.mount")
    baseline = window_listeners(page)
    for round in range(1, 4):
        page.evaluate("() => window.show()")
        wait_for_event(page, "flint:ready", count=round)
        expect(page.locator("#checkout iframe")).to_have_count(1)
        page.evaluate("() => window.hide()")  # destroy() twice: the second is a no-op
        expect(page.locator("iframe")).to_have_count(0)
        assert page.evaluate("() => document.getElementById('checkout').childElementCount") == 0
        assert page.evaluate("() => window.handle.state") == "destroyed"
        assert window_listeners(page) == baseline
    page.evaluate("() => window.show()")
    wait_for_event(page, "flint:ready", count=4)
    pay_in_frame(card_frame(page), SUCCESS)
    wait_for_event(page, "flint:complete")
    assert order_of(merchant, embedded)["status"] == "paid"


def test_a_keyboard_only_buyer_pays_with_tab_and_enter(page: Page, shop, server, merchant, embedded):
    open_widget(page, shop, server, embedded, "/pay-keyboard", redirect="false")
    wait_for_event(page, "flint:ready")
    frame = page.frame_locator(f'iframe[title="{FRAME_TITLE}"]')
    focused = frame.locator(":focus")
    for _ in range(15):  # Tab from the top of the merchant's page into the card frame
        page.keyboard.press("Tab")
        if focused.count() and focused.get_attribute("id") == "card_number":
            break
    assert focused.get_attribute("id") == "card_number"
    page.keyboard.type("4242424242424242")
    page.keyboard.press("Tab")
    page.keyboard.type("1234")
    page.keyboard.press("Tab")
    page.keyboard.type("123")
    page.keyboard.press("Tab")
    assert focused.get_attribute("id") == "pay"
    page.keyboard.press("Enter")
    wait_for_event(page, "flint:complete")
    assert order_of(merchant, embedded)["status"] == "paid"


def test_appearance_sets_the_frames_colours_radius_and_font(page: Page, shop, server, embedded):
    url = shop.serve("/styled", merchant_page("Styled", f"""<div id="checkout"></div>
<script src="{server.url}/widget/v1/flint.js"></script>
<script>
Flint.mount('#checkout', {{clientToken: {embedded['client_token']!r}, appearance: {{variables: {{
  colorPrimary: '#0a7d3b', borderRadius: '2px', fontFamily: 'Georgia, serif',
  colorText: 'red; background: url(https://evil.example/x)'}}}}}});
</script>"""))
    page.goto(url)
    wait_for_event(page, "flint:ready")
    button = card_frame(page).get_by_role("button", name=PAY_BUTTON)
    style = button.evaluate("b => { const s = getComputedStyle(b); return [s.backgroundColor, s.borderTopLeftRadius, s.fontFamily]; }")
    assert style == ["rgb(10, 125, 59)", "2px", "Georgia, serif"]
    # The invalid value was dropped, not passed on.
    body_color = card_frame(page).locator("body").evaluate("b => getComputedStyle(b).color")
    assert body_color == "rgb(31, 35, 48)"


def test_leaving_after_typing_records_the_drop_off_on_the_session(page: Page, shop, server, merchant, embedded):
    open_widget(page, shop, server, embedded, "/pay-leave")
    wait_for_event(page, "flint:ready")
    card_frame(page).get_by_role("textbox", name="Card number", exact=True).fill("4242")
    page.wait_for_timeout(200)  # the frame's "interacted" message reaches the loader
    page.goto(shop.url + "/")

    async def left_at():
        runtime = await Runtime.start(server.runtime_config())
        try:
            async with runtime.db.read() as conn:
                return (await session_store.select_session_by_id(conn, embedded["id"])).buyer_left_at
        finally:
            await runtime.stop()

    deadline = time.monotonic() + 10
    while run_async(left_at) is None:
        assert time.monotonic() < deadline, "the beacon was not recorded"
        time.sleep(0.2)


def test_the_card_frame_is_accessible_and_screenshotted(page: Page, shop, server, embedded):
    open_widget(page, shop, server, embedded, "/pay-look", redirect="false")
    wait_for_event(page, "flint:ready")
    assert_accessible(page)
    frame = page.frame(url=re.compile(r"/widget/v1/frame/"))
    assert frame is not None
    assert_accessible(frame)  # type: ignore[arg-type]  (a Frame has the calls axe needs)
    screenshot(page, "widget-card-form")
    pay_in_frame(card_frame(page), DECLINE)
    expect(card_frame(page).get_by_role("alert")).to_be_visible()
    assert_accessible(frame)  # type: ignore[arg-type]
    screenshot(page, "widget-declined")
    pay_in_frame(card_frame(page), THREE_DS)
    expect(card_frame(page).get_by_role("heading", name="Confirm your payment")).to_be_visible()
    assert_accessible(frame)  # type: ignore[arg-type]
    screenshot(page, "widget-3ds-challenge")


def test_the_frame_opened_on_its_own_shows_the_hosted_link(page: Page, server, embedded):
    page.goto(f"{server.url}/widget/v1/frame/{embedded['id']}")
    expect(page.get_by_text("This payment form cannot be shown on this page.")).to_be_visible()
    expect(page.get_by_role("link", name="Pay on the secure checkout page")).to_have_attribute("href", embedded["url"])
    expect(page.get_by_role("button", name=PAY_BUTTON)).to_be_hidden()


def test_the_frame_is_cross_origin_to_the_merchant_page(page: Page, shop, server, embedded):
    """The premise of every card-data guarantee: the frame is Flint's origin, the page is the shop's,
    and the page's script cannot even read where the frame is."""
    open_widget(page, shop, server, embedded, "/pay-origin")
    wait_for_event(page, "flint:ready")
    frame = page.frame(url=re.compile(r"/widget/v1/frame/"))
    assert frame is not None and frame.url.startswith(server.url)
    assert not page.url.startswith(server.url)
    try:
        page.evaluate("() => document.querySelector('iframe').contentWindow.location.href")
    except PlaywrightError as error:
        assert "SecurityError" in str(error) or "cross-origin" in str(error)
    else:
        raise AssertionError("the merchant page read the frame's location")
