"""Composing a queued email (docs/api.md 16, flint.mail.compose): the message an SMTP server receives,
read back as a mail client would (the bytes parsed with the standard library): a text and an HTML part,
the headers, the buyer's language and amounts, nothing of a card but brand and last four, no header a
merchant's name or reference could add, List-Unsubscribe only on recovery emails."""
from __future__ import annotations

import json
import re
from email import message_from_bytes
from email import policy as email_policy
from email.message import EmailMessage
from email.utils import getaddresses, parsedate_to_datetime
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from flint import clock, i18n, money
from flint.config import Config
from flint.mail import compose as composing
from flint.mail.compose import compose
from flint.mail.models import Email
from support import TEST_SECRET

CONFIG = Config(database_url="sqlite:///unused.sqlite3", secret_keys=(TEST_SECRET,), env="development",
                public_url="https://flint.example", smtp_url="smtp://127.0.0.1:2525",
                mail_from="Flint Mail <mail@flint.example>")
UNSUBSCRIBE = "https://flint.example/unsubscribe/eyJtIjoibWNoXzEifQ.signature"
LINK = "https://flint.example/pay/pl_abc123"
FULL_NUMBER = "4242424242424242"


def context(**changes) -> dict:
    base = {
        "merchant": {"name": "Kaffee & Co", "brand_color": "#0a7c66"},
        "order": {"id": "ord_123", "reference": "R-1001", "currency": "eur", "amount_total": 123456,
                  "amount_paid": 0,
                  "lines": [{"name": "Beans <1 kg>", "quantity": 2, "amount": 100000},
                            {"name": "Mug", "quantity": 1, "amount": 23456}]},
        "link_url": LINK,
        "payment": None,
        "expires_at": "2026-12-03T18:30:00Z",
    }
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            base[key] = {**base[key], **value}
        else:
            base[key] = value
    return base


PAID = {"payment": {"brand": "visa", "last4": "4242", "amount": 123456, "paid_at": "2026-11-26T18:21:07Z"},
        "order": {"amount_paid": 123456}, "link_url": None, "expires_at": None}


def email(kind: str, locale: str = "en", ctx: dict | None = None, to: str = "ada@example.com") -> Email:
    now = clock.now_iso()
    return Email(id="em_test1", merchant_id="mch_test1", order_id="ord_123", payment_link_id=None, kind=kind,
                 to_address=to, locale=locale, cause=f"{kind}:test", context=json.dumps(ctx or context()),
                 message_id="<em_test1@flint.example>", status="sending", attempts=1, last_error=None,
                 next_attempt_at=None, lease_until=None, created_at=now, updated_at=now, sent_at=None)


def sent(kind: str, locale: str = "en", ctx: dict | None = None, unsubscribe_url: str | None = UNSUBSCRIBE,
         **kwargs) -> tuple[EmailMessage, bytes]:
    """The composed message as the SMTP server gets it (bytes), and parsed back as a client reads it."""
    raw = compose(email(kind, locale, ctx, **kwargs), CONFIG, unsubscribe_url=unsubscribe_url).as_bytes()
    return message_from_bytes(raw, policy=email_policy.default), raw


def parts(message: EmailMessage) -> tuple[str, str]:
    """(text, html) as decoded, with the wire's CRLF line ends as newlines."""
    return tuple(message.get_body((subtype,)).get_content().replace("\r\n", "\n") for subtype in ("plain", "html"))


def header_lines(raw: bytes) -> list[str]:
    return raw.split(b"\r\n\r\n", 1)[0].decode("ascii").split("\r\n")


# -- parts and headers -----------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["receipt", "recovery", "payment_link"])
def test_each_kind_is_multipart_alternative_text_then_html_with_its_headers(kind):
    message, raw = sent(kind, ctx=context(**PAID) if kind == "receipt" else None)
    assert message.get_content_type() == "multipart/alternative"
    assert [part.get_content_type() for part in message.iter_parts()] == ["text/plain", "text/html"]
    for part in message.iter_parts():
        assert part.get_content_charset() == "utf-8"
        assert part["Content-Transfer-Encoding"] == "quoted-printable"
    assert all(line.isascii() and len(line) <= 998 for line in raw.split(b"\r\n"))  # 7-bit, RFC 5322 lengths
    [(name, address)] = getaddresses([message["From"]])
    assert (name, address) == ("Kaffee & Co", "mail@flint.example")
    assert getaddresses([message["To"]]) == [("", "ada@example.com")]
    assert message["Message-ID"] == "<em_test1@flint.example>"
    assert message["Auto-Submitted"] == "auto-generated"
    assert abs((parsedate_to_datetime(message["Date"]) - clock.now()).total_seconds()) < 60
    assert message["Subject"] == {
        "receipt": "Your receipt from Kaffee & Co for order R-1001",
        "recovery": "You left your checkout at Kaffee & Co",
        "payment_link": "Kaffee & Co sent you a link to pay order R-1001"}[kind]
    text, html = parts(message)
    assert text.startswith("Kaffee & Co\n") and "Kaffee &amp; Co" in html and '<html lang="en">' in html
    names = [line.split(":", 1)[0].lower() for line in header_lines(raw) if not line[:1].isspace()]
    assert len(names) == len(set(names))  # every header once


def test_the_message_id_is_the_rows_own_so_a_resend_carries_the_same():
    first, _ = sent("payment_link")
    again, _ = sent("payment_link")
    assert first["Message-ID"] == again["Message-ID"] == "<em_test1@flint.example>"


def test_the_configured_name_stands_in_when_the_merchant_has_none():
    message, _ = sent("payment_link", ctx=context(merchant={"name": "  "}))
    assert getaddresses([message["From"]]) == [("Flint Mail", "mail@flint.example")]


# -- List-Unsubscribe ------------------------------------------------------------------------------------

def test_a_recovery_email_has_rfc_8058_one_click_unsubscribe_in_headers_and_both_parts():
    message, _ = sent("recovery")
    assert message["List-Unsubscribe"].strip() == f"<{UNSUBSCRIBE}>"  # (folded: the URL is long)
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    text, html = parts(message)
    assert f"Unsubscribe from these reminders:\n{UNSUBSCRIBE}\n" in text
    assert f'<a href="{UNSUBSCRIBE}"' in html and "Unsubscribe from these reminders</a>" in html
    assert "ada@example.com" in text  # which address the reminder went to


@pytest.mark.parametrize("kind", ["receipt", "payment_link"])
def test_receipts_and_sent_links_have_no_unsubscribe_even_if_given_one(kind):
    message, raw = sent(kind, ctx=context(**PAID) if kind == "receipt" else None)
    assert message["List-Unsubscribe"] is None and message["List-Unsubscribe-Post"] is None
    assert b"unsubscribe" not in raw.lower()


def test_a_recovery_email_without_its_unsubscribe_url_is_refused():
    with pytest.raises(ValueError):
        sent("recovery", unsubscribe_url=None)
    with pytest.raises(ValueError):
        sent("recovery", unsubscribe_url="javascript:alert(1)")


# -- language and amounts ----------------------------------------------------------------------------------

LANGUAGES = {
    "en": {"subject": "You left your checkout at Kaffee & Co", "total": "€1,234.56", "button": "Pay €1,234.56",
           "texts": ["You left your checkout", "Order summary", "This link works until December 3, 2026, 6:30\u202fPM UTC."]},
    "de": {"subject": "Sie haben Ihre Bestellung bei Kaffee & Co nicht abgeschlossen", "total": "1.234,56\xa0€",
           "button": "1.234,56\xa0€ bezahlen",
           "texts": ["Sie haben Ihre Bestellung nicht abgeschlossen", "Bestellübersicht", "Gesamtbetrag",
                     "Dieser Link ist gültig bis 3. Dezember 2026, 18:30 UTC.", "Diese Erinnerungen abbestellen"]},
    "fr": {"subject": "Vous n'avez pas terminé votre commande chez Kaffee & Co", "total": "1\u202f234,56\xa0€",
           "button": "Payer 1\u202f234,56\xa0€",
           "texts": ["Vous n'avez pas terminé votre commande", "Récapitulatif", "Ce lien est valable jusqu'au 3 décembre 2026, 18:30 UTC.",
                     "Se désabonner de ces rappels"]},
}


@pytest.mark.parametrize("locale", ["en", "de", "fr"])
def test_the_mail_speaks_the_buyers_language_and_formats_amounts_for_it(locale):
    expected = LANGUAGES[locale]
    message, _ = sent("recovery", locale)
    text, html = parts(message)
    assert message["Subject"] == expected["subject"]
    assert f'<html lang="{locale}">' in html
    assert money.format_amount(123456, "eur", locale) == expected["total"]
    for body in (text, html.replace("&#39;", "'")):
        assert expected["total"] in body and expected["button"] in body
        assert money.format_amount(100000, "eur", locale) in body  # the line's amount
        for phrase in expected["texts"]:
            assert phrase in body, (locale, phrase)
    if locale != "en":
        assert "You left your checkout" not in text and "Order summary" not in html


@pytest.mark.parametrize("locale,card,date", [("en", "Visa ending in 4242", "November 26, 2026"),
                                              ("de", "Visa mit den Endziffern 4242", "26. November 2026"),
                                              ("fr", "Visa se terminant par 4242", "26 novembre 2026")])
def test_a_receipt_shows_the_amount_paid_card_brand_last4_and_date(locale, card, date):
    message, _ = sent("receipt", locale, context(**PAID))
    text, html = parts(message)
    for body in (text, html):
        assert money.format_amount(123456, "eur", locale) in body
        assert card in body and date in body and "R-1001" in body
    assert i18n.translations(locale).gettext("Payment received") in text


def test_a_payment_link_says_who_sent_it_and_has_a_button_and_the_plain_url():
    message, _ = sent("payment_link", ctx=context(order={"amount_paid": 23456}))
    text, html = parts(message)
    assert "Kaffee & Co sent you a link to pay order R-1001" in text
    assert "Kaffee &amp; Co sent you a link to pay order R-1001" in html
    assert f"Pay €1,000.00:\n{LINK}\n" in text  # what is left to pay, then the link on its own line
    assert html.count(f'href="{LINK}"') == 2 and f">{LINK}</a>" in html  # the button and the plain URL
    assert "Beans &lt;1 kg&gt; × 2" in html and "Beans <1 kg> × 2: €1,000.00" in text


# -- what a mail must never hold or do --------------------------------------------------------------------

def test_no_card_number_reaches_a_mail_even_from_a_context_that_holds_one():
    ctx = context(**PAID)
    ctx["payment"] = {**ctx["payment"], "last4": FULL_NUMBER, "cvc": "123", "number": FULL_NUMBER}
    message, raw = sent("receipt", ctx=ctx)
    text, html = parts(message)
    for body in (text, html, raw.decode("ascii")):
        assert FULL_NUMBER not in body and "4242 4242" not in body
    assert "Visa ending in 4242" in text
    assert "123" not in re.sub(r"1,234\.56|R-1001|ord_123", "", text)  # no CVC (the amounts hold 123)


@pytest.mark.parametrize("name", [
    'Evil "Shop", Ltd\r\nBcc: victim@evil.example',
    "Evil Shop\nX-Injected: 1\n\n<h1>body</h1>",
    "Evil\u2028Bcc: victim@evil.example\x00\x1b",
    "=?utf-8?q?Bcc=3A_victim=40evil=2Eexample?=",
])
def test_a_merchant_name_cannot_add_a_header(name):
    ctx = context(merchant={"name": name}, order={"reference": "R-1\r\nBcc: other@evil.example"})
    for kind in ("receipt", "recovery", "payment_link"):
        message, raw = sent(kind, ctx=context(**PAID, merchant={"name": name}) if kind == "receipt" else ctx)
        lines = header_lines(raw)
        assert not [line for line in lines if re.match(r"(?i)(bcc|cc|x-injected|reply-to)\s*:", line)], lines
        assert message["Bcc"] is None and message["X-Injected"] is None
        assert len(getaddresses([message["From"]])) == 1
        [(shown, address)] = getaddresses([message["From"]])
        assert address == "mail@flint.example"
        assert "\n" not in shown and "\r" not in shown and "\n" not in message["Subject"]
        assert shown == composing.header_text(name)
        assert message.get_body(("html",)).get_content().count("<h1") == 1  # the name is text in HTML too


def test_a_non_ascii_merchant_name_is_encoded_and_reads_back_whole():
    message, raw = sent("payment_link", "fr", context(merchant={"name": "Café Müller ☕"}))
    assert all(line.isascii() for line in header_lines(raw))
    assert "=?utf-8?" in raw.split(b"\r\n\r\n", 1)[0].decode()
    assert getaddresses([message["From"]]) == [("Café Müller ☕", "mail@flint.example")]
    assert message["Subject"].startswith("Café Müller ☕ vous a envoyé un lien")


def test_a_recipient_with_a_line_break_is_refused_not_folded():
    with pytest.raises(ValueError):
        sent("payment_link", to="ada@example.com\r\nBcc: victim@evil.example")


def test_the_brand_colour_reaches_styles_only_as_a_checked_hex():
    message, _ = sent("payment_link", ctx=context(merchant={"brand_color": "#0A7C66"}))
    html = parts(message)[1]
    assert "border-top:6px solid #0a7c66" in html and "background-color:#0a7c66" in html
    assert "color:#ffffff" in html  # white reads on a dark green button
    hostile = "red;background:url(//evil.example/x)"
    message, _ = sent("payment_link", ctx=context(merchant={"brand_color": hostile}))
    html = parts(message)[1]
    assert "evil.example" not in html and "#4f46e5" in html
    pale, _ = sent("payment_link", ctx=context(merchant={"brand_color": "#ffe14d"}))
    assert "color:#111827;text-decoration:none" in parts(pale)[1]  # a pale brand gets dark button text


def test_a_link_that_is_not_http_is_left_out():
    message, _ = sent("payment_link", ctx=context(link_url="javascript:alert(1)"))
    text, html = parts(message)
    assert "javascript" not in text and "javascript" not in html


def test_every_mail_text_is_in_the_german_and_french_catalogues():
    """The .txt templates too (tests/hosted/test_translations.py extracts .html and Python only)."""
    root = Path(__file__).resolve().parents[2]
    method_map = [("**.txt", "jinja2"), ("**.html", "jinja2")]
    options = {pattern: {"extensions": "jinja2.ext.i18n"} for pattern, _ in method_map}
    marked = {message if isinstance(message, str) else message[0] for _, _, message, _, _ in
              extract_from_dir(root / "hosted_pages" / "templates" / "mail", method_map, options)}
    marked |= set(composing.SUBJECTS.values())
    assert {"You left your checkout", "Unsubscribe from these reminders", "Order summary"} <= marked
    for locale in ("de", "fr"):
        with open(i18n.TRANSLATIONS_DIR / locale / "LC_MESSAGES" / "messages.po", "rb") as handle:
            translated = {m.id for m in read_po(handle, locale=locale) if m.id and m.string}
        assert sorted(marked - translated) == []
