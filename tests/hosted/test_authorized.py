"""The buyer's pages for a manual-capture payment (docs/api.md 17), over real HTTP with JavaScript off: the
card was authorized, not charged, so no page says "paid" until the merchant captures; the receipt then
does. In English, German and French; the widget's card frame gets the same words with the merchant's name."""
from __future__ import annotations

import html
import json
import re

import httpx
import pytest

from flint import i18n
from flint.actors import Actor
from flint.checkout import service as checkout
from flint.collect import capture as capturing
from flint.hosted.texts import AUTHORIZED
from flint.links import service as links
from flint.orders import service as orders
from support.factories import make_merchant, make_order, new_order

from .test_pages import card_form, token_of

PAID_WORDS = ("Payment received", "was successful", "already been paid")


async def _manual_session(rt, merchant_id: str, mode: str = "hosted", amount: int = 2599):
    new = checkout.NewSession(mode=mode, success_url="https://shop.example/thanks", order_id=None,
                              inline_order=new_order(amount, "usd"), expires_in=3600, capture="manual")
    return await checkout.create_session(rt, merchant_id, new, Actor("merchant", merchant_id))


def _said(page: str) -> str:
    return html.unescape(re.sub(r"\s+", " ", page))


@pytest.fixture
async def browser(server):
    async with httpx.AsyncClient(base_url=server.url, follow_redirects=False, timeout=30) as client:
        yield client


async def _authorized_payment(rt, merchant_id: str, order_id: str):
    async with rt.db.read() as conn:
        row = await conn.fetch_one("SELECT id FROM payments WHERE order_id = :o AND status = 'authorized'",
                                   {"o": order_id})
    return row["id"]


async def test_a_manual_capture_checkout_says_authorized_until_captured_then_paid(browser, server_rt, merchant):
    merchant_obj, _ = merchant
    session = await _manual_session(server_rt, merchant_obj.id)
    token = token_of((await browser.get(f"/checkout/{session.id}")).text)
    sent = await browser.post(f"/checkout/{session.id}", data=card_form(token))
    # The merchant's success page, as for any payment: the merchant knows it was authorized.
    assert sent.status_code == 303
    assert sent.headers["location"] == f"https://shop.example/thanks?session_id={session.id}"
    order = await orders.get_order(server_rt, merchant_obj.id, session.order_id)
    assert (order.status, order.amount_paid) == ("authorized", 0)
    # Back at the checkout, or at its receipt: authorized, and nothing says paid.
    for path in (f"/checkout/{session.id}", f"/checkout/{session.id}/receipt"):
        page = await browser.get(path)
        assert page.status_code == 200, path
        said = _said(page.text)
        assert "Card authorized" in said
        assert (f"Your card was authorized. You will be charged when {merchant_obj.name} confirms your order."
                in said)
        assert "$25.99" in said and "•••• 4242" in said
        assert not any(words in said for words in PAID_WORDS), path
        assert 'name="card_number"' not in page.text  # no form: a second payment is not offered
    # The merchant captures: the receipt says paid.
    payment_id = await _authorized_payment(server_rt, merchant_obj.id, session.order_id)
    await capturing.capture_payment(server_rt, merchant_obj.id, payment_id, Actor("merchant", merchant_obj.id))
    said = _said((await browser.get(f"/checkout/{session.id}/receipt")).text)
    assert "Payment received" in said and f"Your payment to {merchant_obj.name} was successful" in said
    assert "authorized" not in said


@pytest.mark.parametrize(("language", "heading", "sentence"), [
    ("de", "Karte autorisiert",
     "Ihre Karte wurde autorisiert. Die Belastung erfolgt, sobald {m} Ihre Bestellung bestätigt."),
    ("fr", "Carte autorisée", "Votre carte a été autorisée. Vous serez débité lorsque {m} confirmera votre commande."),
])
async def test_a_payment_link_says_authorized_in_the_buyers_language(browser, server_rt, merchant, language, heading,
                                                                     sentence):
    merchant_obj, _ = merchant
    order = await make_order(server_rt, merchant_obj.id, 4200, "eur")
    link = await links.create_link(server_rt, merchant_obj.id, order.id, expires_in=None,
                                   actor=Actor("merchant", merchant_obj.id), capture="manual")
    headers = {"Accept-Language": language}
    token = token_of((await browser.get(f"/pay/{link.id}", headers=headers)).text)
    sent = await browser.post(f"/pay/{link.id}", headers=headers, data=card_form(token))
    # A link has no success_url of its own: its receipt page.
    assert sent.status_code == 303 and sent.headers["location"] == f"/pay/{link.id}/receipt"
    for path in (sent.headers["location"], f"/pay/{link.id}"):
        said = _said((await browser.get(path, headers=headers)).text)
        assert heading in said and sentence.format(m=merchant_obj.name) in said, path
        translations = i18n.translations(language)
        for words in ("Payment received", "This order has already been paid"):
            assert translations.gettext(words) not in said
    payment_id = await _authorized_payment(server_rt, merchant_obj.id, order.id)
    await capturing.capture_payment(server_rt, merchant_obj.id, payment_id, Actor("merchant", merchant_obj.id),
                                    1000)
    said = _said((await browser.get(f"/pay/{link.id}/receipt", headers=headers)).text)
    assert i18n.translations(language).gettext("Payment received") in said and heading not in said
    assert re.search(r"10,00\s?€", said)  # what was captured, not what was authorized


async def test_the_card_frame_gets_the_authorized_words_with_the_merchants_name(browser, server_rt):
    merchant_obj, _ = await make_merchant(server_rt, origins=["https://shop.example"])
    session = await _manual_session(server_rt, merchant_obj.id, mode="embedded")
    for language in i18n.LOCALES:
        page = await browser.get(f"/widget/v1/frame/{session.id}", headers={"Accept-Language": language})
        config = json.loads(html.unescape(re.search(
            r'<script type="application/json" id="flint-frame-config"[^>]*>(.*?)</script>', page.text, re.DOTALL).group(1)))
        expected = i18n.translations(language).gettext(AUTHORIZED).replace("%(merchant)s", merchant_obj.name)
        assert config["messages"]["authorized"] == expected
        assert config["messages"]["order_authorized"] == expected  # the frame of an order already authorized
        assert "%(merchant)s" not in json.dumps(config["messages"])
    assert "Payment complete" not in config["messages"]["authorized"]
