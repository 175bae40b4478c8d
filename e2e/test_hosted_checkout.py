"""The hosted checkout in real Chromium, as buyers use it: with JavaScript off and on, by keyboard,
in three languages; every state's page checked by axe-core and screenshotted for review."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from .helpers import answer_challenge, assert_accessible, pay, screenshot

DECLINE = "4000 0000 0000 0002"
SUCCESS = "4242 4242 4242 4242"
THREE_DS = "4000 0027 6000 3184"


@pytest.fixture(params=[False, True], ids=["js_off", "js_on"])
def buyer(request, new_context) -> Page:
    """A buyer's page, with JavaScript off (the fallback that cannot fail) and on."""
    context = new_context(java_script_enabled=request.param)
    page = context.new_page()
    page.javascript = request.param  # type: ignore[attr-defined]
    return page


def order_of(merchant, session) -> dict:
    return merchant.api.get(f"/v1/orders/{session['order_id']}").json()


def succeeded_payments(merchant, session) -> int:
    listed = merchant.api.get("/v1/payments", params={"order": session["order_id"]}).json()["data"]
    return sum(p["status"] == "succeeded" for p in listed)


def test_success_lands_on_the_success_url_and_pays(buyer: Page, checkout_session, merchant, shop):
    response = buyer.goto(checkout_session["url"])
    assert response.status == 200
    expect(buyer.get_by_role("heading", level=1)).to_have_text("Checkout")
    expect(buyer.get_by_role("button", name=re.compile(r"^Pay \$24\.00$"))).to_be_visible()
    pay(buyer, SUCCESS)
    expect(buyer).to_have_url(f"{shop.url}/thanks?session_id={checkout_session['id']}")
    expect(buyer.get_by_role("heading", level=1)).to_have_text("Thank you for your order")
    assert order_of(merchant, checkout_session)["status"] == "paid"


def test_a_decline_shows_a_message_then_the_success_card_pays(buyer: Page, checkout_session, merchant, shop):
    buyer.goto(checkout_session["url"])
    buyer.get_by_role("textbox", name="Email").fill("ada@example.com")
    pay(buyer, DECLINE)
    expect(buyer.get_by_role("alert")).to_have_text("Your card was declined.")
    expect(buyer.get_by_role("textbox", name="Email")).to_have_value("ada@example.com")
    expect(buyer.get_by_role("textbox", name="Card number")).to_have_value("")
    assert order_of(merchant, checkout_session)["status"] == "open"
    pay(buyer, SUCCESS)
    expect(buyer).to_have_url(re.compile(re.escape(f"{shop.url}/thanks")))
    assert order_of(merchant, checkout_session)["status"] == "paid"


@pytest.mark.parametrize("approve", [True, False], ids=["approve", "deny"])
def test_three_d_secure(buyer: Page, checkout_session, merchant, shop, approve):
    buyer.goto(checkout_session["url"])
    pay(buyer, THREE_DS)
    expect(buyer.get_by_role("heading", level=1)).to_have_text("Confirm your payment")
    answer_challenge(buyer, approve=approve)
    if approve:
        expect(buyer).to_have_url(re.compile(re.escape(f"{shop.url}/thanks")))
        assert order_of(merchant, checkout_session)["status"] == "paid"
    else:
        expect(buyer.get_by_role("alert")).to_contain_text("could not authenticate your payment")
        assert order_of(merchant, checkout_session)["status"] == "open"


def test_back_then_pay_never_charges_twice(buyer: Page, checkout_session, merchant, shop):
    buyer.goto(checkout_session["url"])
    pay(buyer, SUCCESS)
    expect(buyer).to_have_url(re.compile(re.escape(f"{shop.url}/thanks")))
    buyer.go_back()  # the checkout page is not cached: it is fetched again and tells the truth
    expect(buyer.get_by_role("heading", level=1)).to_have_text("This order has already been paid")
    expect(buyer.get_by_role("button", name=re.compile("^Pay"))).to_have_count(0)
    assert succeeded_payments(merchant, checkout_session) == 1


def test_a_double_click_on_pay_charges_once(page: Page, checkout_session, merchant, shop):
    page.goto(checkout_session["url"])
    page.get_by_role("textbox", name="Card number").fill(SUCCESS)
    page.get_by_role("textbox", name="Expiry (MM / YY)").fill("12 / 34")
    page.get_by_role("textbox", name="CVC").fill("123")
    page.get_by_role("button", name=re.compile("^Pay")).dblclick()
    expect(page).to_have_url(re.compile(re.escape(f"{shop.url}/thanks")))
    assert succeeded_payments(merchant, checkout_session) == 1


def test_keyboard_only_payment(page: Page, checkout_session, merchant, shop):
    page.goto(checkout_session["url"])
    for _ in range(10):  # Tab from the top of the page to the card number, as a keyboard user does
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") == "card_number":
            break
    page.keyboard.type("4242424242424242")
    page.keyboard.press("Tab")
    page.keyboard.type("1234")
    page.keyboard.press("Tab")
    page.keyboard.type("123")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "pay"
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(re.escape(f"{shop.url}/thanks")))
    assert order_of(merchant, checkout_session)["status"] == "paid"


def test_every_state_has_its_own_page_accessible_and_screenshotted(page: Page, create_checkout_session, merchant, server):
    checkout = create_checkout_session()
    response = page.goto(checkout["url"])
    assert response.status == 200
    assert_accessible(page)
    screenshot(page, "hosted-checkout")

    pay(page, DECLINE)
    expect(page.get_by_role("alert")).to_be_visible()
    assert_accessible(page)
    screenshot(page, "hosted-checkout-declined")

    pay(page, THREE_DS)
    expect(page.get_by_role("heading", level=1)).to_have_text("Confirm your payment")
    assert_accessible(page)
    screenshot(page, "hosted-3ds-challenge")
    answer_challenge(page, approve=True)

    response = page.goto(checkout["url"])
    assert response.status == 200
    expect(page.get_by_role("heading", level=1)).to_have_text("This order has already been paid")
    assert_accessible(page)
    screenshot(page, "hosted-already-paid")

    response = page.goto(checkout["url"] + "/receipt")
    assert response.status == 200
    expect(page.get_by_role("heading", level=1)).to_have_text("Payment received")
    assert_accessible(page)
    screenshot(page, "hosted-receipt")

    expired = create_checkout_session()
    merchant.api.post(f"/v1/checkout/sessions/{expired['id']}/expire")
    response = page.goto(expired["url"])
    assert response.status == 410
    expect(page.get_by_role("heading", level=1)).to_have_text("This checkout has expired")
    assert_accessible(page)
    screenshot(page, "hosted-expired")

    canceled = create_checkout_session()
    merchant.api.post(f"/v1/orders/{canceled['order_id']}/cancel")
    response = page.goto(canceled["url"])
    assert response.status == 410
    expect(page.get_by_role("heading", level=1)).to_have_text("This order was canceled")
    assert_accessible(page)
    screenshot(page, "hosted-canceled")

    response = page.goto(f"{server.url}/checkout/cs_forged0000000000000000")
    assert response.status == 404
    expect(page.get_by_role("heading", level=1)).to_have_text("Page not found")
    assert_accessible(page)
    screenshot(page, "hosted-not-found")


def test_a_replayed_or_forged_form_is_refused(page: Page, checkout_session, merchant):
    page.goto(checkout_session["url"])
    token = page.locator("input[name=form_token]").get_attribute("value")
    pay(page, SUCCESS)
    page.wait_for_url(re.compile("/thanks"))
    # The same form token again (what a replay or a resubmitted page sends): refused, not charged.
    replay = page.request.post(checkout_session["url"], form={
        "form_token": token, "card_number": SUCCESS, "expiry": "12 / 34", "cvc": "123"}, max_redirects=0)
    assert replay.status == 409
    page.set_content(replay.text())
    expect(page.get_by_role("heading", level=1)).to_have_text("Your payment is being processed")
    assert_accessible(page)
    screenshot(page, "hosted-form-already-sent")
    forged = page.request.post(checkout_session["url"], form={
        "form_token": token[:-4] + "AAAA", "card_number": SUCCESS, "expiry": "12 / 34", "cvc": "123"}, max_redirects=0)
    assert forged.status == 403
    page.set_content(forged.text())
    expect(page.get_by_role("heading", level=1)).to_have_text("This form has expired")
    assert_accessible(page)
    screenshot(page, "hosted-form-refused")
    assert succeeded_payments(merchant, checkout_session) == 1


def test_the_page_refuses_to_be_framed(page: Page, checkout_session, shop):
    framing = shop.serve("/framed", f'<!doctype html><html lang="en"><title>Framed</title>'
                                    f'<iframe title="checkout" src="{checkout_session["url"]}"></iframe></html>')
    page.goto(framing)
    frame = page.frame_locator("iframe[title=checkout]")
    expect(frame.get_by_role("textbox", name="Card number")).to_have_count(0, timeout=3000)
    child = [f for f in page.frames if f != page.main_frame][0]
    assert "Card number" not in child.content()


@pytest.mark.parametrize("language,currency,amount,texts", [
    ("de-DE", "eur", "1.234,56\xa0€", ["Kartennummer", "Ablaufdatum (MM / JJ)"]),
    ("fr-FR", "jpy", "123\u202f456\xa0JPY", ["Numéro de carte", "Date d'expiration (MM / AA)"]),
    ("de-DE", "kwd", "123,456\xa0KWD", ["Prüfnummer (CVC)", "Gesamtbetrag"]),
])
def test_the_page_speaks_the_buyers_language(browser, create_checkout_session, language, currency, amount, texts):
    checkout = create_checkout_session(currency=currency, line_items=[{"name": "Set", "quantity": 1, "unit_amount": 123456}])
    context = browser.new_context(locale=language, viewport={"width": 1280, "height": 900})  # sends Accept-Language
    page = context.new_page()
    page.goto(checkout["url"])
    expect(page.locator("html")).to_have_attribute("lang", language[:2])
    # Accessible names fold no-break spaces into spaces; the page text keeps the locale's own.
    spaced = re.escape(amount).replace("\xa0", r"\s").replace("\u202f", r"\s")
    expect(page.get_by_role("button", name=re.compile(spaced))).to_be_visible()
    assert page.locator(".total").text_content() == amount
    for text in texts:
        expect(page.get_by_text(text, exact=True).first).to_be_visible()
    assert_accessible(page)
    screenshot(page, f"hosted-checkout-{language}-{currency}")
    context.close()
