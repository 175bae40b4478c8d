"""The demo merchant shop (examples/shop) against a real Flint: a storefront on its own origin that
creates embedded checkout sessions with its secret key, renders the merchant's script tag, and
reads the order's status back from Flint's API."""
from __future__ import annotations

import html as htmllib
import logging
import re

import httpx

from examples.shop import create_shop
from examples.shop.app import format_money
from support import free_port
from support.server import LiveServer

CARD = {"number": "4242424242424242", "exp_month": 12, "exp_year": 2030, "cvc": "123"}
SCRIPT_TAG = re.compile(
    r'<script src="(?P<src>[^"]+)" data-client-token="(?P<token>[^"]+)" data-target="#checkout" async></script>')


def assert_readable_page(page: httpx.Response, status: int, heading: str) -> None:
    assert page.status_code == status
    assert page.headers["content-type"].startswith("text/html")
    assert f"<h1>{heading}</h1>" in page.text
    assert '<html lang="en">' in page.text and '<a href="/">Back to the shop</a>' in page.text
    assert "Traceback" not in page.text and "sk_test_" not in page.text


async def buy(shop_client: httpx.AsyncClient, quantity: int = 1) -> str:
    """Press "Buy now" as a browser without JavaScript would; returns the new session's id."""
    bought = await shop_client.post("/checkout", data={"quantity": str(quantity)})
    assert bought.status_code == 303, bought.text
    location = bought.headers["location"]
    match = re.fullmatch(r"/pay/(cs_[0-9A-Za-z]+)", location)
    assert match, location
    return match.group(1)


async def test_the_product_page_is_a_plain_accessible_form(shop):
    async with shop.client() as browser:
        page = await browser.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    html = page.text
    assert '<html lang="en">' in html and "<title>Espresso beans, 1 kg — Demo Coffee Roasters</title>" in html
    assert all(tag in html for tag in ("<header", "<main", "<footer"))
    assert "Demo Coffee Roasters" in html and "<h1 id=\"product-name\">Espresso beans, 1 kg</h1>" in html
    assert "$24.00" in html
    assert '<form method="post" action="/checkout"' in html
    assert '<label for="quantity">Quantity</label>' in html and '<select id="quantity" name="quantity">' in html
    assert '<button type="submit">Buy now</button>' in html
    # No third-party resources: every src/href is on the shop's own origin (or an in-page anchor).
    for url in re.findall(r'(?:src|href)="([^"]+)"', html):
        assert url.startswith(("/", "#")), url


async def test_buy_now_creates_an_embedded_session_for_an_inline_order(shop, server: LiveServer, merchant):
    _, secret = merchant
    async with shop.client() as browser, server.async_client(secret) as flint:
        first = await buy(browser, quantity=2)
        second = await buy(browser, quantity=2)
        assert first != second  # a fresh Idempotency-Key per form post: each press is a new checkout

        session = (await flint.get(f"/v1/checkout/sessions/{first}")).json()
        assert session["mode"] == "embedded" and session["status"] == "open"
        assert session["success_url"] == f"{shop.url}/success?session_id={{CHECKOUT_SESSION_ID}}"
        assert session["cancel_url"] == f"{shop.url}/"
        order = (await flint.get(f"/v1/orders/{session['order_id']}")).json()
        assert order["status"] == "open" and order["currency"] == "usd" and order["amount_total"] == 4800
        assert [(i["name"], i["quantity"], i["unit_amount"]) for i in order["line_items"]] == [
            ("Espresso beans 1 kg", 2, 2400)]

    # The shop's origin comes from the request: reached as localhost, it sends buyers back to localhost.
    async with httpx.AsyncClient(base_url=f"http://localhost:{shop.port}", timeout=30) as browser, \
            server.async_client(secret) as flint:
        via_localhost = await buy(browser)
        session = (await flint.get(f"/v1/checkout/sessions/{via_localhost}")).json()
    assert session["success_url"] == f"http://localhost:{shop.port}/success?session_id={{CHECKOUT_SESSION_ID}}"


async def test_a_quantity_out_of_range_is_a_readable_400(shop):
    async with shop.client() as browser:
        for quantity in ("0", "11", "two"):
            page = await browser.post("/checkout", data={"quantity": quantity})
            assert_readable_page(page, 400, "Please choose a quantity")


async def test_the_checkout_page_pastes_the_merchant_script_tag_and_paying_shows_paid(shop, server: LiveServer,
                                                                                        merchant):
    _, secret = merchant
    async with shop.client() as browser, server.async_client(secret) as flint, \
            server.async_client() as buyer:
        session_id = await buy(browser)
        page = await browser.get(f"/pay/{session_id}")
        assert page.status_code == 200 and page.headers["cache-control"] == "no-store"
        html = page.text
        session = (await flint.get(f"/v1/checkout/sessions/{session_id}")).json()

        tags = SCRIPT_TAG.findall(html)
        assert len(tags) == 1
        src, token = tags[0]
        assert src == f"{server.url}/widget/v1/flint.js"
        assert token.count(".") >= 2  # an itsdangerous-signed token
        assert '<div id="checkout"></div>' in html
        assert '<p id="widget-status" role="status" aria-live="polite">' in html
        for event in ("flint:ready", "flint:complete", "flint:fallback", "flint:error"):
            assert f'"{event}"' in html
        assert "window.shopEvents" in html
        noscript = re.search(r"<noscript>(.*?)</noscript>", html, re.S).group(1)
        assert f'<a href="{htmllib.escape(session["url"])}">Pay on Flint\'s secure page</a>' in noscript
        assert "$24.00" in html and "Espresso beans 1 kg" in html
        # The page lets the buyer's browser load Flint's script and frame, and nothing else foreign.
        csp = page.headers["content-security-policy"]
        assert f"script-src 'self' 'nonce-" in csp and server.url in csp and f"frame-src {server.url}" in csp

        # The token in the tag is this session's client_token: the buyer's credential to pay it.
        paid = await buyer.post(f"/v1/checkout/sessions/{session_id}/confirm", json={"card": CARD},
                                headers={"Authorization": f"Bearer {token}"})
        assert paid.status_code == 200 and paid.json()["status"] == "succeeded", paid.text

        success = await browser.get(f"/success?session_id={session_id}")
        assert success.status_code == 200
        order = (await flint.get(f"/v1/orders/{session['order_id']}")).json()
        assert order["status"] == "paid"
        assert f'<strong id="order-status">{order["status"]}</strong>' in success.text
        assert f'<span id="order-id">{order["id"]}</span>' in success.text
        assert "$24.00" in success.text and '<a href="/">Back to the shop</a>' in success.text

        # Back on the checkout page of a completed session: straight to the success page.
        again = await browser.get(f"/pay/{session_id}")
        assert again.status_code == 303 and again.headers["location"] == f"/success?session_id={session_id}"


async def test_an_unpaid_order_reads_as_open_on_the_success_page(shop):
    async with shop.client() as browser:
        session_id = await buy(browser)
        page = await browser.get(f"/success?session_id={session_id}")
    assert page.status_code == 200
    assert '<strong id="order-status">open</strong>' in page.text
    assert f'<a href="/pay/{session_id}">Return to checkout</a>' in page.text


async def test_an_expired_checkout_is_a_readable_410(shop, server: LiveServer, merchant):
    _, secret = merchant
    async with shop.client() as browser, server.async_client(secret) as flint:
        session_id = await buy(browser)
        expired = await flint.post(f"/v1/checkout/sessions/{session_id}/expire")
        assert expired.status_code == 200 and expired.json()["status"] == "expired"
        page = await browser.get(f"/pay/{session_id}")
    assert_readable_page(page, 410, "This checkout has expired")
    assert "flint.js" not in page.text


async def test_unknown_or_missing_sessions_are_readable_404s(shop):
    async with shop.client() as browser:
        for path in ("/success?session_id=cs_0000000000000000000000", "/success", "/success?session_id=../v1/orders"):
            assert_readable_page(await browser.get(path), 404, "Order not found")
        for path in ("/pay/cs_0000000000000000000000", "/pay/not-a-session"):
            assert_readable_page(await browser.get(path), 404, "Checkout not found")
        assert_readable_page(await browser.get("/no-such-page"), 404, "Page not found")


async def test_flint_down_is_a_readable_502_and_is_logged(caplog):
    app = create_shop(f"http://127.0.0.1:{free_port()}", "sk_test_unused")  # nothing listens there
    caplog.set_level(logging.WARNING, logger="examples.shop")
    async with app.test_app() as test_app:
        browser = test_app.test_client()
        pages = [await browser.post("/checkout", form={"quantity": "1"}),
                 await browser.get("/pay/cs_0000000000000000000000"),
                 await browser.get("/success?session_id=cs_0000000000000000000000")]
        for page in pages:
            assert page.status_code == 502
            html = await page.get_data(as_text=True)
            assert "<h1>Payments are unavailable</h1>" in html and "nothing was charged" in html
            assert "Traceback" not in html
    failures = [r for r in caplog.records if r.getMessage() == "Flint API unreachable"]
    assert len(failures) == 3 and {r.path for r in failures} == {
        "/v1/checkout/sessions", "/v1/checkout/sessions/cs_0000000000000000000000"}


async def test_flint_refusing_the_key_is_a_502_not_a_traceback(server: LiveServer, caplog):
    app = create_shop(server.url, "sk_test_" + "x" * 33)  # a real Flint, a key it does not know
    caplog.set_level(logging.WARNING, logger="examples.shop")
    async with app.test_app() as test_app:
        page = await test_app.test_client().post("/checkout", form={"quantity": "1"})
        assert page.status_code == 502
        assert "<h1>Payments are unavailable</h1>" in await page.get_data(as_text=True)
    assert any(r.getMessage() == "Flint API error" and r.status == 401 for r in caplog.records)


def test_money_is_formatted_in_the_currency_minor_unit():
    assert format_money(2400, "usd") == "$24.00"
    assert format_money(123456, "usd") == "$1,234.56"
    assert format_money(500, "jpy") == "¥500"
    assert format_money(1500, "kwd") == "1.500 KWD"
