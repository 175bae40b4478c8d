"""The console's first pages over real HTTP, as a browser uses them: /dashboard and the Orders pages for
the person signed in at /login, the way there from / and from a signed-out visit, and the headers every
merchant page carries."""
from __future__ import annotations

import html
import itertools
import re
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from flint.actors import Actor
from flint.buyers.models import Address, Collected, Customer
from flint.checkout import service as checkout
from flint.collect import service as collect
from flint.merchants import service as merchants
from flint.orders import store as order_store
from flint.orders.service import redact_order
from flint.refunds.service import NewRefund, issue_refund
from support.factories import card, make_order, make_session, new_order, pay_session

PASSWORD = "a long and correct password"
_counter = itertools.count(1)


def csrf_of(page: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


@pytest.fixture
async def browser(server):
    async with httpx.AsyncClient(base_url=server.url, follow_redirects=False, timeout=30) as client:
        yield client


async def _account(rt, name: str | None = None):
    n = next(_counter)
    merchant, _ = await merchants.create_merchant(rt, name=name or f"Console Shop {n}",
                                                  email=f"console{n}-{id(rt)}@shop.example", password=PASSWORD)
    return merchant


async def _sign_in(browser, merchant) -> None:
    page = await browser.get("/login")
    done = await browser.post("/login", data={"csrf_token": csrf_of(page.text), "email": merchant.email,
                                              "password": PASSWORD})
    assert done.status_code == 303


@pytest.fixture
async def signed_in(server_rt, browser):
    """(merchant, browser) with the merchant signed in."""
    merchant = await _account(server_rt)
    await _sign_in(browser, merchant)
    return merchant, browser


def order_links(page: str) -> list[str]:
    return re.findall(r'<a href="/dashboard/orders/(ord_[A-Za-z0-9]+)">', page)


def link(page: str, name: str) -> str | None:
    found = re.search(rf'<a class="\w+" href="([^"]+)" rel="\w+">{name}</a>', page)
    return html.unescape(found.group(1)) if found else None


# -- the way in ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("path", ["/dashboard", "/dashboard/orders", "/dashboard/orders?status=paid&q=a%40b.c",
                                  "/dashboard/orders/ord_whatever"])
async def test_signed_out_goes_to_sign_in_and_comes_back(browser, path, server_rt):
    answer = await browser.get(path)
    assert answer.status_code == 303
    location = answer.headers["location"]
    assert location.startswith("/login?next=/dashboard")
    assert parse_qs(urlsplit(location).query)["next"] == [path]
    merchant = await _account(server_rt)
    page = await browser.get(location)
    back = await browser.post("/login", data={"csrf_token": csrf_of(page.text), "email": merchant.email,
                                              "password": PASSWORD, "next": path})
    assert back.status_code == 303 and back.headers["location"] == path


async def test_the_root_sends_people_to_the_console_or_to_sign_in(browser, server_rt):
    answer = await browser.get("/")
    assert answer.status_code == 303 and answer.headers["location"] == "/login"
    await _sign_in(browser, await _account(server_rt))
    answer = await browser.get("/")
    assert answer.status_code == 303 and answer.headers["location"] == "/dashboard"
    assert (await browser.get("/no-such-page")).status_code == 404  # only the root changed


# -- the shell ---------------------------------------------------------------------------------------------

async def test_the_shell_names_the_merchant_links_its_pages_and_signs_out(signed_in, server_rt):
    merchant, browser = signed_in
    await make_order(server_rt, merchant.id, 1234)
    page = await browser.get("/dashboard")
    assert page.status_code == 200
    assert merchant.name in page.text
    nav = re.search(r'<nav class="side" aria-label="Console">(.*?)</nav>', page.text, re.DOTALL).group(1)
    assert re.findall(r'<a href="([^"]+)"', nav) == [
        "/dashboard", "/dashboard/orders", "/dashboard/payment_links", "/dashboard/webhooks", "/dashboard/apps",
        "/dashboard/api_keys", "/dashboard/settings", "/dashboard/team"]
    assert '<a href="/dashboard" aria-current="page">Overview</a>' in nav
    assert "$12.34" in page.text  # the recent orders, in their currency
    orders = await browser.get("/dashboard/orders")
    assert '<a href="/dashboard/orders" aria-current="page">Orders</a>' in orders.text
    out = await browser.post("/logout", data={"csrf_token": csrf_of(orders.text)})  # the shell's sign-out works
    assert out.status_code == 303 and out.headers["location"] == "/login"
    assert (await browser.get("/dashboard")).status_code == 303


@pytest.mark.parametrize("path", ["/dashboard", "/dashboard/orders", "/dashboard/orders/{order}",
                                  "/dashboard/orders/ord_unknown"])
async def test_every_page_has_the_merchant_pages_headers_and_no_inline_code_without_the_nonce(signed_in, server_rt,
                                                                                              path):
    merchant, browser = signed_in
    order = await make_order(server_rt, merchant.id)
    page = await browser.get(path.format(order=order.id))
    assert page.status_code in (200, 404)
    csp = page.headers["content-security-policy"]
    nonce = re.search(r"script-src 'nonce-([^']+)'", csp).group(1)
    assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp and f"style-src 'nonce-{nonce}'" in csp
    assert page.headers["x-frame-options"] == "DENY" and page.headers["cache-control"] == "no-store"
    assert page.headers["x-content-type-options"] == "nosniff" and page.headers["referrer-policy"] == "no-referrer"
    for tag in re.findall(r"<(?:script|style)\b[^>]*>", page.text):
        assert f'nonce="{nonce}"' in tag, tag
    # Scripts: the console's own two only, served by Flint with their SRI hash (tests/console/test_live.py),
    # none inline.
    for tag in re.findall(r"<script\b[^>]*>", page.text):
        assert re.fullmatch(r'<script src="/dashboard/assets/(htmx\.min|console)\.js\?v=[\w-]+" '
                            r'integrity="sha384-[\w+/=]+" nonce="[^"]+" defer>', tag), tag
    assert not re.search(r"<script\b[^>]*>[^<]", page.text)
    assert not re.search(r"\sstyle=|\son[a-z]+=|javascript:", page.text)  # no inline styles or handlers


# -- the order list ------------------------------------------------------------------------------------------

async def test_search_finds_an_order_by_email_id_or_reference(signed_in, server_rt):
    merchant, browser = signed_in
    wanted = await make_order(server_rt, merchant.id)
    others = [await make_order(server_rt, merchant.id) for _ in range(3)]
    async with server_rt.db.transaction() as conn:
        await conn.execute("UPDATE orders SET customer_email = :e, reference = :r WHERE id = :id",
                           {"e": "Ada.Buyer@Example.com", "r": "INV-2026-0042", "id": wanted.id})
    for query in ("ada.buyer@example.com", "ADA.BUYER@EXAMPLE.COM", " Ada.Buyer@Example.com ", wanted.id,
                  "INV-2026-0042"):
        page = await browser.get("/dashboard/orders", params={"q": query})
        assert page.status_code == 200
        assert order_links(page.text) == [wanted.id], query
        assert f'value="{html.escape(query.strip())}"' in page.text  # the box keeps what was searched
    for near_miss in ("ada.buyer", "inv-2026-0042", wanted.id[:-1]):  # exact matches only
        page = await browser.get("/dashboard/orders", params={"q": near_miss})
        assert order_links(page.text) == [] and "No order matches this search." in page.text
    page = await browser.get("/dashboard/orders")
    assert set(order_links(page.text)) == {wanted.id, *(o.id for o in others)}
    assert '<label for="q">Search orders</label>' in page.text and 'id="q" name="q" type="search"' in page.text


async def test_the_status_filter(signed_in, server_rt):
    merchant, browser = signed_in
    open_orders = [await make_order(server_rt, merchant.id) for _ in range(2)]
    session = await make_session(server_rt, merchant.id)
    await pay_session(server_rt, session)
    page = await browser.get("/dashboard/orders", params={"status": "paid"})
    assert order_links(page.text) == [session.order_id]
    assert '<option value="paid" selected>Paid</option>' in page.text
    page = await browser.get("/dashboard/orders", params={"status": "open"})
    assert set(order_links(page.text)) == {o.id for o in open_orders}
    page = await browser.get("/dashboard/orders", params={"status": "refunded"})
    assert order_links(page.text) == []
    page = await browser.get("/dashboard/orders", params={"status": "nonsense"})  # unknown: all orders
    assert page.status_code == 200 and len(order_links(page.text)) == 3


async def test_keyset_pages_list_every_order_once_newest_first_and_back(signed_in, server_rt):
    merchant, browser = signed_in
    made = [(await make_order(server_rt, merchant.id, 100 + n)).id for n in range(27)]
    other = await _account(server_rt)
    await make_order(server_rt, other.id)  # never listed here
    pages, url = [], "/dashboard/orders"
    while url:
        page = await browser.get(url)
        assert page.status_code == 200 and "OFFSET" not in url
        pages.append(order_links(page.text))
        url = link(page.text, "Older orders")
        assert (link(page.text, "Newer orders") is None) == (len(pages) == 1)
    assert [len(p) for p in pages] == [25, 2]
    assert [order for page in pages for order in page] == list(reversed(made))  # each once, newest first
    back = await browser.get(link(page.text, "Newer orders"))
    assert order_links(back.text) == pages[0] and link(back.text, "Newer orders") is None
    assert link(back.text, "Older orders") is not None


async def test_paging_keeps_the_filters(signed_in, server_rt):
    merchant, browser = signed_in
    for _ in range(27):
        await make_order(server_rt, merchant.id)
    await pay_session(server_rt, await make_session(server_rt, merchant.id))
    page = await browser.get("/dashboard/orders", params={"status": "open"})
    older = link(page.text, "Older orders")
    assert parse_qs(urlsplit(older).query)["status"] == ["open"]
    assert len(order_links((await browser.get(older)).text)) == 2


# -- one order ---------------------------------------------------------------------------------------------

async def test_the_order_page_tells_the_whole_story(signed_in, server_rt):
    merchant, browser = signed_in
    session = await checkout.create_session(server_rt, merchant.id, checkout.NewSession(
        mode="embedded", success_url="https://shop.example/thanks", inline_order=new_order(4200, "eur"),
        collect={"phone": "optional", "shipping_address": {"allowed_countries": ["US"]}},
        custom_fields=[{"key": "gift_note", "label": "Gift note", "type": "text"}]), Actor("merchant", merchant.id))
    declined = await pay_session(server_rt, session, number="4000000000000002")
    assert declined.status == "failed"
    buyer = Collected(customer=Customer(email="Grace@Example.com", name="Grace Hopper", phone="+14155550123",
                                        shipping_address=Address(country="US", line1="1 Navy Way", city="Arlington",
                                                                 postal_code="22202", state="VA")),
                      custom_fields={"gift_note": "Happy birthday"}, app_fields={}, terms_accepted=False)
    attempt = collect.Attempt(merchant_id=merchant.id, order_id=session.order_id, channel=session.mode,
                              checkout_session_id=session.id)
    paid = await collect.confirm_payment(server_rt, attempt, card(), Actor("buyer", session.id), buyer)
    await issue_refund(server_rt, merchant.id, NewRefund(order_id=session.order_id, amount=1000,
                                                         reason="requested_by_customer"),
                       Actor("merchant", merchant.id))
    page = await browser.get(f"/dashboard/orders/{session.order_id}")
    assert page.status_code == 200
    text = re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", page.text)))
    for shown in ("Total €42.00", "Paid €42.00", "Refunded €10.00", "Refundable €32.00",  # amounts, currency
                  "Thing 1 €42.00 €42.00",  # the line
                  "Email Grace@Example.com", "Name Grace Hopper", "Phone +1 415-555-0123",
                  "Shipping address 1 Navy Way Arlington VA 22202 United States", "Gift note Happy birthday"):
        assert shown in text, (shown, text)
    timeline = re.search(r'<ol class="timeline">(.*?)</ol>', page.text, re.DOTALL).group(1)
    titles = re.findall(r'<p class="what">([^<]+)', timeline)
    assert [t.strip() for t in titles] == [
        "Order created", "Checkout session created (embedded)", "Payment failed", "Payment succeeded",
        "Order paid", "Checkout session completed", "Refunded €10.00", "Order partially refunded"], titles
    timeline_text = html.unescape(timeline)
    assert "Decline reason: Your card was declined. (card_declined)" in timeline_text
    assert f"Payment {declined.id}" in timeline_text and f"Payment {paid.id}" in timeline_text
    assert "Reason: requested_by_customer" in timeline_text and "Visa •••• 4242" in timeline_text
    assert re.search(r'<time datetime="\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ">\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC</time>',
                     timeline)
    async with server_rt.db.read() as conn:  # in the order's own sequence
        sequences = [e["type"] for e in await conn.fetch_all(
            "SELECT type FROM events WHERE order_id = :o ORDER BY sequence", {"o": session.order_id})]
    assert len(sequences) == len(titles)


async def test_another_merchants_order_is_the_same_404_as_an_unknown_one(signed_in, server_rt):
    _, browser = signed_in
    theirs = await make_order(server_rt, (await _account(server_rt)).id)
    foreign = await browser.get(f"/dashboard/orders/{theirs.id}")
    unknown = await browser.get("/dashboard/orders/ord_doesnotexist0000000000")
    assert foreign.status_code == unknown.status_code == 404

    def without_tokens(page: str) -> str:
        return re.sub(r'(nonce|value)="[^"]+"', "", page)

    assert without_tokens(foreign.text) == without_tokens(unknown.text)
    assert theirs.id not in foreign.text and "Order not found" in foreign.text
    assert order_links((await browser.get("/dashboard/orders", params={"q": theirs.id})).text) == []


async def test_a_redacted_order_says_so(signed_in, server_rt):
    merchant, browser = signed_in
    order = await make_order(server_rt, merchant.id)
    async with server_rt.db.transaction() as conn:
        await order_store.record_buyer_details(conn, order.id, customer={"email": "gone@example.com"},
                                               custom_fields={}, at=order.created_at)
    await redact_order(server_rt, merchant.id, order.id, Actor("merchant", merchant.id))
    page = html.unescape((await browser.get(f"/dashboard/orders/{order.id}")).text)
    assert "gone@example.com" not in page and "The buyer's details were erased on" in page
    assert "Buyer's details erased" in page  # and its line in the timeline
