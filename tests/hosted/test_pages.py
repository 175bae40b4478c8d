"""Hosted checkout pages over real HTTP, as a browser with JavaScript off uses them: plain
forms, redirects, one-time form tokens, an honest page for every state."""
import gzip
import re

import httpx
import pytest
from markupsafe import escape

from flint import i18n
from flint.closing import service as closing
from flint.actors import Actor
from flint.orders import service as orders
from support.factories import make_session

SUCCESS = "4242 4242 4242 4242"


def token_of(html: str) -> str:
    return re.search(r'name="form_token" value="([^"]+)"', html).group(1)


def card_form(token, number=SUCCESS, expiry="12 / 34", cvc="123", **extra):
    return {"form_token": token, "card_number": number, "expiry": expiry, "cvc": cvc, **extra}


@pytest.fixture
async def visit(server, server_rt, merchant):
    """A buyer's browser (no JavaScript, cookies irrelevant) and an open hosted checkout."""
    merchant_obj, _ = merchant
    session = await make_session(server_rt, merchant_obj.id, mode="hosted", amount=2599)
    async with httpx.AsyncClient(base_url=server.url, follow_redirects=False, timeout=30) as browser:
        yield browser, session, merchant_obj


async def _order(server_rt, merchant_obj, session):
    return await orders.get_order(server_rt, merchant_obj.id, session.order_id)


async def _payments(server_rt, session):
    async with server_rt.db.read() as conn:
        return await conn.fetch_all("SELECT status, failure_code FROM payments WHERE order_id = :o ORDER BY created_at",
                                    {"o": session.order_id})


async def test_the_page_shows_merchant_summary_and_the_accessible_card_form(visit):
    browser, session, merchant_obj = visit
    page = await browser.get(f"/checkout/{session.id}")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    html = page.text
    assert merchant_obj.name in html and "$25.99" in html and "Thing" in html
    for label in ("Card number", "Expiry (MM / YY)", "CVC"):
        field = re.search(rf'<label for="([a-z_]+)">{re.escape(label)}</label>', html)
        assert field and f'id="{field.group(1)}"' in html
    assert re.search(r'<button type="submit" id="pay">Pay \$25\.99</button>', html)
    assert "<form method=\"post\"" in html  # works with JavaScript off
    assert len(gzip.compress(page.content)) < 20 * 1024


async def test_success_redirects_to_the_success_url_with_the_session(visit, server_rt):
    browser, session, merchant_obj = visit
    token = token_of((await browser.get(f"/checkout/{session.id}")).text)
    paid = await browser.post(f"/checkout/{session.id}", data=card_form(token))
    assert paid.status_code == 303
    assert paid.headers["location"] == f"https://shop.example/thanks?session_id={session.id}"
    order = await _order(server_rt, merchant_obj, session)
    assert (order.status, order.amount_paid) == ("paid", 2599)
    assert [p["status"] for p in await _payments(server_rt, session)] == ["succeeded"]


async def test_a_decline_shows_a_message_keeps_the_other_fields_then_pays(visit, server_rt):
    browser, session, merchant_obj = visit
    token = token_of((await browser.get(f"/checkout/{session.id}")).text)
    declined = await browser.post(f"/checkout/{session.id}", data=card_form(
        token, number="4000 0000 0000 0002", **{"customer.email": "ada@example.com", "customer.name": "Ada Lovelace"}))
    assert declined.status_code == 402
    assert 'role="alert"' in declined.text and "Your card was declined." in declined.text
    assert 'value="ada@example.com"' in declined.text and 'value="Ada Lovelace"' in declined.text
    assert "4000 0000 0000 0002" not in declined.text and "4000000000000002" not in declined.text
    retry = await browser.post(f"/checkout/{session.id}", data=card_form(token_of(declined.text)))
    assert retry.status_code == 303
    assert (await _order(server_rt, merchant_obj, session)).status == "paid"


async def test_every_bad_field_is_marked_at_once_in_the_buyers_language(visit, server_rt):
    """Without JavaScript the server judges the whole form: a bad email, number, expiry and CVC come back
    together, each message (from the German catalogue) at its field, the first field focused, what the
    buyer typed kept but never the card, and no payment attempted."""
    browser, session, _ = visit
    german = {"Accept-Language": "de-DE,de;q=0.9"}
    token = token_of((await browser.get(f"/checkout/{session.id}", headers=german)).text)
    refused = await browser.post(f"/checkout/{session.id}", headers=german, data=card_form(
        token, number="4242 4242 4242 4241", expiry="13 / 20", cvc="1",
        **{"customer.email": "ada@localhost", "customer.name": "Ada Lovelace"}))
    assert refused.status_code == 400
    html, de = refused.text, i18n.translations("de")
    assert de.gettext("Please check the fields marked below.") in html
    for input_id, english in [("customer-email", "Enter a valid email address."),
                              ("card_number", "Your card number is not valid."),
                              ("expiry", "Enter the expiry date as MM / YY."),
                              ("cvc", "Your card's security code is not valid.")]:
        field = re.search(rf'<input id="{input_id}"[^>]*>', html).group(0)
        assert 'aria-invalid="true"' in field and f'{input_id}-error"' in field, field
        message = re.search(rf'<p class="field-error" id="{input_id}-error">([^<]*)</p>', html).group(1)
        assert message == str(escape(de.gettext(english))) and message != english
    assert "autofocus" in re.search(r'<input id="customer-email"[^>]*>', html).group(0)
    assert 'name="customer.name"' in html and 'value="Ada Lovelace"' in html
    assert "4242424242424241" not in html and "4242 4242 4242 4241" not in html
    assert 'aria-invalid' not in re.search(r'<input id="customer-name"[^>]*>', html).group(0)
    assert await _payments(server_rt, session) == []


@pytest.mark.parametrize("action,paid", [("approve", True), ("deny", False)])
async def test_three_d_secure_challenge_page(visit, server_rt, action, paid):
    browser, session, merchant_obj = visit
    token = token_of((await browser.get(f"/checkout/{session.id}")).text)
    sent = await browser.post(f"/checkout/{session.id}", data=card_form(token, number="4000 0027 6000 3184"))
    assert sent.status_code == 303 and "/challenge/pay_" in sent.headers["location"]
    challenge = await browser.get(sent.headers["location"])
    assert challenge.status_code == 200
    assert 'value="approve">Approve</button>' in challenge.text and 'value="deny" class="secondary">Deny</button>' in challenge.text
    answered = await browser.post(sent.headers["location"], data={"form_token": token_of(challenge.text), "action": action})
    assert answered.status_code == 303
    order = await _order(server_rt, merchant_obj, session)
    if paid:
        assert answered.headers["location"].startswith("https://shop.example/thanks")
        assert order.status == "paid"
    else:
        back = await browser.get(answered.headers["location"])
        assert back.status_code == 200 and "We could not authenticate your payment" in back.text
        assert order.status == "open"


async def test_double_submit_and_back_then_pay_charge_once(visit, server_rt):
    browser, session, merchant_obj = visit
    form_page = (await browser.get(f"/checkout/{session.id}")).text
    token = token_of(form_page)
    first = await browser.post(f"/checkout/{session.id}", data=card_form(token))
    second = await browser.post(f"/checkout/{session.id}", data=card_form(token))  # the double click
    assert first.status_code == 303
    assert second.status_code == 409 and "already sent" in second.text
    assert first.headers["location"] in second.text  # it points to where the first one went
    # Back, then Pay again: the page is not cached, so the browser fetches it anew and it says paid.
    back = await browser.get(f"/checkout/{session.id}")
    assert back.status_code == 200 and "already been paid" in back.text and "•••• 4242" in back.text
    assert 'name="card_number"' not in back.text
    assert [p["status"] for p in await _payments(server_rt, session)] == ["succeeded"]


async def test_forged_missing_and_foreign_form_tokens_are_refused(visit, server_rt):
    browser, session, merchant_obj = visit
    token = token_of((await browser.get(f"/checkout/{session.id}")).text)
    other = await make_session(server_rt, merchant_obj.id, mode="hosted")
    foreign = token_of((await browser.get(f"/checkout/{other.id}")).text)
    tampered = token[:-3] + ("aaa" if not token.endswith("aaa") else "bbb")
    for bad in (tampered, foreign, ""):
        refused = await browser.post(f"/checkout/{session.id}", data=card_form(bad))
        assert refused.status_code == 403, bad
        assert refused.headers["content-type"].startswith("text/html") and "Traceback" not in refused.text
    assert await _payments(server_rt, session) == []


async def test_each_state_has_its_own_page_and_status(visit, server_rt):
    browser, session, merchant_obj = visit
    unknown = await browser.get("/checkout/cs_doesNotExist1234567890")
    assert unknown.status_code == 404 and "Page not found" in unknown.text
    canceled = await make_session(server_rt, merchant_obj.id, mode="hosted")
    await closing.cancel_order(server_rt, merchant_obj.id, canceled.order_id, Actor("merchant", merchant_obj.id))
    page = await browser.get(f"/checkout/{canceled.id}")
    assert page.status_code == 410 and "This order was canceled" in page.text
    expired = await make_session(server_rt, merchant_obj.id, mode="hosted")
    async with server_rt.db.transaction() as conn:
        await conn.execute("UPDATE checkout_sessions SET expires_at = '2020-01-01T00:00:00.000000Z' WHERE id = :id",
                           {"id": expired.id})
    page = await browser.get(f"/checkout/{expired.id}")
    assert page.status_code == 410 and "This checkout has expired" in page.text
    token = token_of((await browser.get(f"/checkout/{session.id}")).text)
    await browser.post(f"/checkout/{session.id}", data=card_form(token))
    page = await browser.get(f"/checkout/{session.id}")
    assert page.status_code == 200 and "This order has already been paid" in page.text
    receipt = await browser.get(f"/checkout/{session.id}/receipt")
    assert receipt.status_code == 200 and "Payment received" in receipt.text and "$25.99" in receipt.text
    forged_challenge = await browser.get(f"/checkout/{session.id}/challenge/pay_forged123")
    assert forged_challenge.status_code == 404


async def test_security_headers_on_every_page(visit):
    browser, session, _ = visit
    for path in (f"/checkout/{session.id}", "/checkout/cs_unknown"):
        page = await browser.get(path, headers={"X-Forwarded-Proto": "https"})
        csp = page.headers["content-security-policy"]
        nonce = re.search(r"'nonce-([^']+)'", csp).group(1)
        assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp and "base-uri 'none'" in csp
        assert "http" not in csp.replace("https://shop.example", "")  # no third-party sources
        assert f'nonce="{nonce}"' in page.text
        assert page.headers["x-frame-options"] == "DENY"
        assert page.headers["cache-control"] == "no-store"
        assert page.headers["referrer-policy"] == "no-referrer"
        assert page.headers["strict-transport-security"].startswith("max-age=")
        assert "<link" not in page.text and "src=\"http" not in page.text  # no external fonts or CDNs
    again = await browser.get(f"/checkout/{session.id}")
    assert re.search(r"'nonce-([^']+)'", again.headers["content-security-policy"]).group(1) != nonce
    assert "strict-transport-security" not in again.headers  # only over HTTPS


@pytest.mark.parametrize("language,currency,amount,texts", [
    ("de", "eur", "1.234,56\xa0€", ("Kartennummer", "1.234,56\xa0€ bezahlen", "Gesamtbetrag")),
    ("fr", "jpy", "123\u202f456\xa0JPY", ("Numéro de carte", "Payer 123\u202f456\xa0JPY", "Récapitulatif")),
    # The expiry's placeholder too, not only its label (issue 15).
    ("de", "kwd", "123,456\xa0KWD", ("Prüfnummer (CVC)", "Ablaufdatum (MM / JJ)", 'placeholder="MM / JJ"', "123,456\xa0KWD")),
    ("fr", "kwd", "123,456\xa0KWD", ("Date d'expiration (MM / AA)", 'placeholder="MM / AA"', "Payer")),
])
async def test_locales_translate_texts_and_format_amounts(server, server_rt, merchant, language, currency, amount, texts):
    merchant_obj, _ = merchant
    session = await make_session(server_rt, merchant_obj.id, mode="hosted", amount=123456, currency=currency)
    async with httpx.AsyncClient(base_url=server.url) as browser:
        page = await browser.get(f"/checkout/{session.id}", headers={"Accept-Language": f"{language},en;q=0.5"})
    assert f'<html lang="{language}">' in page.text
    assert amount in page.text
    for text in texts:
        assert text in page.text, text
    assert "Card number" not in page.text


async def test_the_merchant_colour_brands_the_page(server, server_rt, merchant):
    merchant_obj, key = merchant
    async with server.async_client(key) as api:
        updated = await api.post("/v1/merchant", json={"brand_color": "#0A7C66"})
        assert updated.status_code == 200 and updated.json()["brand_color"] == "#0a7c66"
        bad = await api.post("/v1/merchant", json={"brand_color": "red; background:url(//evil)"})
        assert bad.status_code == 400 and bad.json()["param"] == "brand_color"
    session = await make_session(server_rt, merchant_obj.id, mode="hosted")
    async with httpx.AsyncClient(base_url=server.url) as browser:
        page = await browser.get(f"/checkout/{session.id}")
    assert "--brand: #0a7c66;" in page.text


async def test_spent_form_nonces_are_purged_once_their_tokens_have_expired(rt):
    from flint.forms import store as form_store
    from flint.background.sweeper import sweep_once

    async with rt.db.transaction() as conn:
        await form_store.consume_nonce(conn, "old", "cs_x", "2020-01-01T00:00:00.000000Z")
        await form_store.consume_nonce(conn, "fresh", "cs_x", "2999-01-01T00:00:00.000000Z")
    assert (await sweep_once(rt))["form_nonces_purged"] == 1
    async with rt.db.read() as conn:
        assert await form_store.select_nonce(conn, "old") is None
        assert await form_store.select_nonce(conn, "fresh") is not None


async def test_an_unreachable_processor_is_an_honest_page_not_a_decline(db_url):
    """The card network does not answer: the buyer is told they will not be charged for this
    attempt (recovery voids it), the payment is not recorded as a decline, nothing crashes."""
    from dataclasses import replace as with_

    from flint.app import create_app
    from flint.config import Config
    from support import TEST_SECRET
    from support.factories import make_merchant
    from tests.collect.test_processor_outages import UnreachableProcessor

    config = Config(database_url=db_url, secret_keys=(TEST_SECRET,), env="development", public_url="http://flint.test")
    app = create_app(with_(config, processor_timeout_seconds=0.2), processor=UnreachableProcessor(),
                     run_sweeper=False)
    async with app.test_app() as test_app:
        rt = app.extensions["flint"]
        merchant_obj, _ = await make_merchant(rt)
        session = await make_session(rt, merchant_obj.id, mode="hosted")
        client = test_app.test_client()
        page = await client.get(f"/checkout/{session.id}")
        token = token_of(await page.get_data(as_text=True))
        sent = await client.post(f"/checkout/{session.id}", form=card_form(token))
        html = await sent.get_data(as_text=True)
        assert sent.status_code == 503
        assert "You will not be charged for this attempt" in html and 'role="alert"' in html
        async with rt.db.read() as conn:
            rows = await conn.fetch_all("SELECT status FROM payments WHERE order_id = :o", {"o": session.order_id})
        assert [r["status"] for r in rows] == ["processing"]
