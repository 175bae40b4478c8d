"""The demo merchant shop (examples/shop) against a real Flint: a storefront on its own origin that
creates embedded checkout sessions with its secret key (asking for an email and a shipping address
to DE, FR or US), mounts Flint's widget in its own colours, and reads the order's status back from
Flint's API."""
from __future__ import annotations

import html as htmllib
import json
import logging
import re
import subprocess
import sys

import httpx

from examples.shop import create_shop
from examples.shop.app import format_money
from support import ROOT, free_port
from support.server import LiveServer

CARD = {"number": "4242424242424242", "exp_month": 12, "exp_year": 2030, "cvc": "123"}
# What a buyer of the shop gives: an email and an address in a country the shop ships to.
CUSTOMER = {"email": "ada@example.com", "shipping_address": {
    "country": "DE", "line1": "Unter den Linden 1", "city": "Berlin", "postal_code": "10117"}}
SHOP_COLLECT = {"email": "required", "name": "optional", "phone": "off", "billing_address": "off",
                "shipping_address": {"allowed_countries": ["DE", "FR", "US"]}, "terms_url": None}
WIDGET_OPTIONS = re.compile(r'<script type="application/json" id="flint-widget">(?P<json>.*?)</script>', re.S)


def stylesheet_variables() -> dict[str, str]:
    """The custom properties of the shop's stylesheet, read here independently of the shop's code."""
    css = (ROOT / "examples" / "shop" / "static" / "shop.css").read_text()
    root = re.search(r":root\s*\{([^}]*)\}", css).group(1)
    return {name: " ".join(value.split()) for name, value in re.findall(r"(--[\w-]+)\s*:\s*([^;]+);", root)}


def widget_rules() -> dict[str, re.Pattern]:
    """The widget's own appearance rules (widget/src/shared.js): a value they refuse is ignored."""
    shared = (ROOT / "widget" / "src" / "shared.js").read_text()
    rules = {}
    for name in ("COLOR", "LENGTH", "FONT"):
        pattern, flags = re.search(rf"const {name} = /(.+)/(\w*);", shared).groups()
        rules[name] = re.compile(pattern, re.I if "i" in flags else 0)
    return rules


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
        # The shop asks for what it needs to send the beans: an email, and an address where it ships.
        assert session["collect"] == SHOP_COLLECT
        assert session["custom_fields"] == []
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


async def test_the_checkout_page_mounts_the_widget_in_the_shops_colours_and_paying_shows_paid(
        shop, server: LiveServer, merchant):
    _, secret = merchant
    async with shop.client() as browser, server.async_client(secret) as flint, \
            server.async_client() as buyer:
        session_id = await buy(browser)
        page = await browser.get(f"/pay/{session_id}")
        assert page.status_code == 200 and page.headers["cache-control"] == "no-store"
        html = page.text
        session = (await flint.get(f"/v1/checkout/sessions/{session_id}")).json()

        # Flint's loader, once, from Flint; the widget mounted from code with the session's token.
        assert html.count("/widget/v1/flint.js") == 1
        assert f'<script src="{server.url}/widget/v1/flint.js" defer></script>' in html
        assert '<div id="checkout"></div>' in html and 'window.Flint.mount("#checkout", options)' in html
        [options] = [json.loads(m.group("json")) for m in WIDGET_OPTIONS.finditer(html)]
        token = options["clientToken"]
        assert token == session["client_token"] and token.count(".") >= 2  # an itsdangerous-signed token

        # The appearance is the shop's own: its stylesheet's brown, ink, paper, radius and font, each
        # a value the widget accepts (it ignores any other), so the Pay button is the shop's brown.
        css = stylesheet_variables()
        appearance = options["appearance"]["variables"]
        assert appearance == {"colorPrimary": css["--accent"], "colorText": css["--ink"],
                              "colorBackground": css["--paper"], "borderRadius": css["--radius"],
                              "fontFamily": css["--font"]}
        assert appearance["colorPrimary"] == "#7a3e12"  # not Flint's default indigo
        rules = widget_rules()
        for key, rule in (("colorPrimary", "COLOR"), ("colorText", "COLOR"), ("colorBackground", "COLOR"),
                          ("borderRadius", "LENGTH"), ("fontFamily", "FONT")):
            assert rules[rule].fullmatch(appearance[key]), (key, appearance[key])

        # No debug line, and one order summary: the frame's (next to its Pay button), not the shop's too.
        assert "widget-status" not in html and 'role="status"' not in html and "shopEvents" not in html
        assert "Order summary" not in html and 'class="summary"' not in html
        frame = await buyer.get(f"/widget/v1/frame/{session_id}")
        assert frame.status_code == 200
        assert frame.text.count('aria-label="Order summary"') == 1 and "$24.00" in frame.text
        noscript = re.search(r"<noscript>(.*?)</noscript>", html, re.S).group(1)
        assert f'<a href="{htmllib.escape(session["url"])}">Pay $24.00 on Flint\'s secure page</a>' in noscript
        # The page lets the buyer's browser load Flint's script and frame, and nothing else foreign.
        csp = page.headers["content-security-policy"]
        assert "script-src 'self' 'nonce-" in csp and server.url in csp and f"frame-src {server.url}" in csp
        nonce = re.search(r"'nonce-([^']+)'", csp).group(1)
        assert f'<script type="module" nonce="{nonce}">' in html

        # The token is this session's client_token: the buyer's credential to pay it, with the details
        # the shop asked for.
        paid = await buyer.post(f"/v1/checkout/sessions/{session_id}/confirm", json={"card": CARD, "customer": CUSTOMER},
                                headers={"Authorization": f"Bearer {token}"})
        assert paid.status_code == 200 and paid.json()["status"] == "succeeded", paid.text

        success = await browser.get(f"/success?session_id={session_id}")
        assert success.status_code == 200
        order = (await flint.get(f"/v1/orders/{session['order_id']}")).json()
        assert order["status"] == "paid"
        assert order["customer"]["email"] == CUSTOMER["email"]
        assert order["customer"]["shipping_address"]["country"] == "DE"
        assert f'<strong id="order-status">{order["status"]}</strong>' in success.text
        assert f'<span id="order-id">{order["id"]}</span>' in success.text
        assert "$24.00" in success.text and '<a href="/">Back to the shop</a>' in success.text
        assert success.text.count("Order summary") == 1  # the success page has no frame: the shop's own

        # Back on the checkout page of a completed session: straight to the success page.
        again = await browser.get(f"/pay/{session_id}")
        assert again.status_code == 303 and again.headers["location"] == f"/success?session_id={session_id}"


async def test_the_shops_checkout_refuses_a_missing_email_and_a_country_it_does_not_ship_to(shop, server: LiveServer,
                                                                                          merchant):
    """The collect the shop sends is what Flint enforces on its session: every missing or refused
    field at once, and no payment."""
    _, secret = merchant
    async with shop.client() as browser, server.async_client(secret) as flint:
        session_id = await buy(browser)
        session = (await flint.get(f"/v1/checkout/sessions/{session_id}")).json()
        async with server.async_client(session["client_token"]) as buyer:
            bare = await buyer.post(f"/v1/checkout/sessions/{session_id}/confirm", json={"card": CARD})
            to_britain = await buyer.post(f"/v1/checkout/sessions/{session_id}/confirm", json={
                "card": CARD, "customer": {**CUSTOMER, "shipping_address": {
                    "country": "GB", "line1": "10 Downing Street", "city": "London", "postal_code": "SW1A 2AA"}}})
        assert bare.status_code == 400 and bare.json()["code"] == "invalid_field", bare.text
        refused = {(e["param"], e["code"]) for e in bare.json()["errors"]}
        assert ("customer.email", "field_required") in refused
        assert any(param.startswith("customer.shipping_address.") for param, _ in refused), refused
        assert to_britain.status_code == 400, to_britain.text
        assert [(e["param"], e["code"]) for e in to_britain.json()["errors"]] == [
            ("customer.shipping_address.country", "country_not_allowed")]
        payments = (await flint.get("/v1/payments", params={"order": session["order_id"]})).json()["data"]
        assert payments == []
        assert (await flint.get(f"/v1/orders/{session['order_id']}")).json()["status"] == "open"


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


def test_a_recovery_delay_flint_would_refuse_stops_the_shop_at_startup():
    """``--recovery-after`` (the shop's checkouts ask for drop-off recovery; examples/shop/tests uses it) takes
    what Flint takes, 5 to 86400 seconds: anything else is a usage error before the shop starts."""
    for bad in ("4", "86401", "soon"):
        done = subprocess.run([sys.executable, "-m", "examples.shop", "--secret-key", "sk_test_unused",
                               "--recovery-after", bad], cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert done.returncode == 2, done
        assert "--recovery-after" in done.stderr and "Traceback" not in done.stderr
