"""Unsubscribing from a merchant's recovery emails (docs/api.md 16) over real HTTP against a live
``flint serve``: RFC 8058's one-click POST (what a mailbox provider's button sends, no cookie, no form),
the buyer page and its form (with its form token), bad links, languages and the page's headers."""
from __future__ import annotations

import dataclasses
import itertools
import re
from email import message_from_bytes
from email import policy as email_policy

import httpx
import pytest

from flint.mail import service as mail
from flint.mail.compose import compose
from flint.runtime import Runtime
from flint.security import FORM_SALT, Signer
from support.factories import make_merchant

ONE_CLICK = {"List-Unsubscribe": "One-Click"}
_causes = itertools.count(1)


def mail_config(rt: Runtime):
    """The live server's configuration with mail on (its own process sends none: no SMTP is set there), so
    the outbox can be asked here whether it would still take a recovery email."""
    return dataclasses.replace(rt.config, smtp_url="smtp://127.0.0.1:2525", mail_from="Shop mail <mail@flint.example>")


async def enqueue(rt: Runtime, merchant_id: str, to: str, kind: str = "recovery"):
    context = {"merchant": {"name": "Shop", "brand_color": "#0a7c66"},
               "order": {"id": "ord_x", "reference": "R-1", "currency": "usd", "amount_total": 2500, "amount_paid": 0,
                         "lines": [{"name": "Thing", "quantity": 1, "amount": 2500}]},
               "link_url": "https://flint.example/pay/pl_x", "payment": None, "expires_at": None}
    async with rt.db.transaction() as conn:
        return await mail.enqueue(conn, mail_config(rt), merchant_id=merchant_id, kind=kind, to=to, locale="en",
                                  cause=f"{kind}:unsubscribe-test-{next(_causes)}", context=context)


async def still_mailed(rt: Runtime, merchant_id: str, to: str) -> bool:
    """Whether a new recovery email from this merchant to this address would be queued."""
    return await enqueue(rt, merchant_id, to) is not None


def form_token_of(html: str) -> str:
    return re.search(r'name="form_token" value="([^"]+)"', html).group(1)


@pytest.fixture
async def shops(server_rt):
    """Two merchants on the live server: (merchant, other merchant)."""
    first, _ = await make_merchant(server_rt)
    second, _ = await make_merchant(server_rt)
    return first, second


@pytest.fixture
async def browser(server):
    async with httpx.AsyncClient(base_url=server.url, follow_redirects=False, timeout=30) as client:
        yield client


async def test_one_click_post_from_the_mails_header_stops_recovery_emails_for_that_merchant_and_address_only(
        server, server_rt, shops):
    merchant, other = shops
    buyer = f"Ada.{merchant.id}@Example.com"
    waiting = await enqueue(server_rt, merchant.id, buyer)
    # The URL as the recovery email carries it, read back from the composed message's header.
    message = message_from_bytes(compose(waiting, mail_config(server_rt), unsubscribe_url=mail.unsubscribe_link(
        server_rt, waiting)).as_bytes(), policy=email_policy.default)
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    url = re.fullmatch(r"\s*<(.+)>", message["List-Unsubscribe"]).group(1)
    assert url.startswith(f"{server.url}/unsubscribe/")
    # What a mailbox provider sends (RFC 8058 3.2): one POST, that body, no cookie, no form token, no redirect.
    async with httpx.AsyncClient(timeout=30, follow_redirects=False) as provider:
        answer = await provider.post(url, data=ONE_CLICK)
    assert answer.status_code == 200
    assert "You are unsubscribed" in answer.text and merchant.name in answer.text
    assert buyer.lower() in answer.text and other.name not in answer.text
    assert not await still_mailed(server_rt, merchant.id, buyer)
    assert not await still_mailed(server_rt, merchant.id, buyer.upper())  # addresses compare case-insensitively
    # Only that merchant and that address, and only recovery emails.
    assert await still_mailed(server_rt, other.id, buyer)
    assert await still_mailed(server_rt, merchant.id, f"grace.{merchant.id}@example.com")
    assert await enqueue(server_rt, merchant.id, buyer, kind="receipt") is not None
    assert await enqueue(server_rt, merchant.id, buyer, kind="payment_link") is not None
    # The one waiting when the buyer clicked is never sent.
    async with server_rt.db.read() as conn:
        row = await conn.fetch_one("SELECT status FROM emails WHERE id = :id", {"id": waiting.id})
    assert row["status"] == "suppressed"
    # Idempotent: the button pressed again (or retried by the provider) is the same answer.
    async with httpx.AsyncClient(timeout=30) as provider:
        again = await provider.post(url, data=ONE_CLICK)
    assert again.status_code == 200 and "You are unsubscribed" in again.text


async def test_one_click_post_as_multipart_form_data_works_too(server, server_rt, shops, browser):
    merchant, _ = shops
    buyer = f"multipart.{merchant.id}@example.com".lower()
    token = mail.unsubscribe_token(server_rt, merchant.id, buyer)
    answer = await browser.post(f"/unsubscribe/{token}", files={"List-Unsubscribe": (None, "One-Click")})
    assert answer.status_code == 200
    assert not await still_mailed(server_rt, merchant.id, buyer)


async def test_the_page_names_merchant_and_address_and_opening_it_changes_nothing(server, server_rt, shops, browser):
    merchant, other = shops
    buyer = f"page.{merchant.id}@example.com".lower()
    token = mail.unsubscribe_token(server_rt, merchant.id, buyer)
    for _ in range(2):  # a mail scanner opening the link, then the buyer
        page = await browser.get(f"/unsubscribe/{token}")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    html = page.text
    assert f"Stop reminder emails from {merchant.name}?" in html and buyer in html
    assert "Receipts and payment links you ask for will still arrive." in html
    assert re.search(rf'<form method="post" action="/unsubscribe/{re.escape(token)}">\s*'
                     r'<input type="hidden" name="form_token" value="[^"]+">\s*'
                     r'<button type="submit">Unsubscribe</button>', html)
    assert other.name not in html
    assert await still_mailed(server_rt, merchant.id, buyer)


async def test_the_pages_form_needs_its_form_token_and_this_browsers_cookie(server, server_rt, shops, browser):
    merchant, _ = shops
    buyer = f"form.{merchant.id}@example.com".lower()
    token = mail.unsubscribe_token(server_rt, merchant.id, buyer)
    path = f"/unsubscribe/{token}"
    page = await browser.get(path)
    form_token = form_token_of(page.text)
    # No form token (a form another site made): refused, the form again, nothing changed.
    refused = await browser.post(path, data={})
    assert refused.status_code == 403
    assert "This form has expired. Nothing was changed" in refused.text and 'role="alert"' in refused.text
    assert await still_mailed(server_rt, merchant.id, buyer)
    # A forged one, and the genuine one from another browser (no cookie): refused.
    assert (await browser.post(path, data={"form_token": form_token + "x"})).status_code == 403
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as elsewhere:
        assert (await elsewhere.post(path, data={"form_token": form_token})).status_code == 403
    # The form of another unsubscribe link, in this browser: refused for this link.
    other_link = mail.unsubscribe_token(server_rt, merchant.id, f"other.{merchant.id}@example.com")
    other_token = form_token_of((await browser.get(f"/unsubscribe/{other_link}")).text)
    assert (await browser.post(path, data={"form_token": other_token})).status_code == 403
    assert await still_mailed(server_rt, merchant.id, buyer)
    # The page's own form in the browser that opened it: unsubscribed.
    done = await browser.post(path, data={"form_token": form_token_of(refused.text)})
    assert done.status_code == 200
    assert f"{merchant.name} will no longer send reminder emails to {buyer}." in done.text
    assert not await still_mailed(server_rt, merchant.id, buyer)
    # Sent again (a double click, a reload): the same page, still unsubscribed.
    assert (await browser.post(path, data={"form_token": form_token})).status_code == 200


@pytest.mark.parametrize("kind", ["garbage", "tampered", "other_purpose", "other_secret", "empty_payload"])
async def test_a_link_that_is_not_genuine_is_a_readable_404_that_changes_nothing(server, server_rt, shops, browser,
                                                                                  kind):
    merchant, other = shops
    buyer = f"bad.{merchant.id}@example.com".lower()
    genuine = mail.unsubscribe_token(server_rt, merchant.id, buyer)
    others = mail.unsubscribe_token(server_rt, other.id, buyer)
    token = {
        "garbage": "not-a-token",
        # Another merchant's payload under this link's timestamp and signature.
        "tampered": others.split(".")[0] + "." + ".".join(genuine.split(".")[1:]),
        "other_purpose": server_rt.signer.dumps(FORM_SALT, [merchant.id, buyer]),
        "other_secret": Signer(("another-secret-key-entirely-0123456789",)).dumps(mail.UNSUBSCRIBE_SALT,
                                                                                  [merchant.id, buyer]),
        "empty_payload": server_rt.signer.dumps(mail.UNSUBSCRIBE_SALT, []),
    }[kind]
    for answer in (await browser.get(f"/unsubscribe/{token}"),
                   await browser.post(f"/unsubscribe/{token}", data=ONE_CLICK)):
        assert answer.status_code == 404
        assert "This unsubscribe link is not valid" in answer.text
        assert "Nothing was changed." in answer.text
        assert merchant.name not in answer.text and other.name not in answer.text and buyer not in answer.text
        assert answer.headers["content-security-policy"].startswith("default-src 'none'")
    assert await still_mailed(server_rt, merchant.id, buyer) and await still_mailed(server_rt, other.id, buyer)


@pytest.mark.parametrize("language,texts", [
    ("de", ["Erinnerungs-E-Mails von", "abbestellen?", '<button type="submit">Abbestellen</button>']),
    ("fr", ["Ne plus recevoir les rappels de", '<button type="submit">Se désabonner</button>']),
])
async def test_the_page_speaks_the_buyers_language(server, server_rt, shops, browser, language, texts):
    merchant, _ = shops
    buyer = f"lang.{language}.{merchant.id}@example.com".lower()
    token = mail.unsubscribe_token(server_rt, merchant.id, buyer)
    headers = {"Accept-Language": f"{language}-CH,{language};q=0.9,en;q=0.5"}
    page = await browser.get(f"/unsubscribe/{token}", headers=headers)
    assert f'<html lang="{language}">' in page.text
    for text in texts:
        assert text in page.text, text
    assert "Unsubscribe</button>" not in page.text
    done = await browser.post(f"/unsubscribe/{token}", data=ONE_CLICK, headers=headers)
    assert {"de": "sendet keine Erinnerungs-E-Mails mehr an", "fr": "n'enverra plus d'e-mails de rappel à"}[language] \
        in done.text.replace("&#39;", "'")
    invalid = await browser.get("/unsubscribe/nope", headers=headers)
    assert {"de": "Dieser Abmeldelink ist ungültig", "fr": "Ce lien de désabonnement n'est pas valide"}[language] \
        in invalid.text.replace("&#39;", "'")


async def test_security_headers_on_every_unsubscribe_page(server, server_rt, shops, browser):
    merchant, _ = shops
    token = mail.unsubscribe_token(server_rt, merchant.id, f"headers.{merchant.id}@example.com")
    https = {"X-Forwarded-Proto": "https"}
    answers = [await browser.get(f"/unsubscribe/{token}", headers=https),
               await browser.post(f"/unsubscribe/{token}", data=ONE_CLICK, headers=https),
               await browser.get("/unsubscribe/not-a-token", headers=https)]
    assert [a.status_code for a in answers] == [200, 200, 404]
    for page in answers:
        csp = page.headers["content-security-policy"]
        nonce = re.search(r"'nonce-([^']+)'", csp).group(1)
        assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp and "base-uri 'none'" in csp
        assert "form-action 'self'" in csp and "http" not in csp  # no third-party sources, forms post to Flint
        assert f'nonce="{nonce}"' in page.text
        assert page.headers["x-frame-options"] == "DENY"
        assert page.headers["cache-control"] == "no-store"
        assert page.headers["referrer-policy"] == "no-referrer"  # the token in the URL goes nowhere else
        assert page.headers["strict-transport-security"].startswith("max-age=")
        assert "<link" not in page.text and 'src="http' not in page.text and "<script" not in page.text
    cookie = answers[0].headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Path=/unsubscribe/" in cookie


async def test_other_errors_under_unsubscribe_speak_to_a_buyer_not_to_a_merchants_staff(browser):
    answer = await browser.put("/unsubscribe/anything")
    assert answer.status_code == 405 and answer.headers["content-type"].startswith("text/html")
    assert "Go to your Flint account" not in answer.text and "Something went wrong" in answer.text
