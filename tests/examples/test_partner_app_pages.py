"""The partner app's pages name merchants (issue 16): by the name Flint's token answer gives
(``merchant_name``, at the install and on every refresh, docs/api.md 10), or, when an answer carries
none (an older Flint), as "Merchant" and a short id; the whole id stays in the page for support
(title, visually hidden text).

The app runs in this process (Quart's test client) against a stand-in for the two Flint endpoints it
calls (``POST /oauth/token``, ``GET /v1/orders``), whose token answer does or does not name the
merchant; tests/examples/test_partner_app.py installs it on a real Flint, and
e2e/test_partner_app_pages.py checks the pages' layout in Chromium."""
from __future__ import annotations

import html
import json
import re
import threading
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest
from standardwebhooks import Webhook

from examples.partner_app import create_partner_app
from examples.partner_app.app import short_id

MERCHANT_ID = "mer_4f9Kq2ZbT7xWcD1eLmN3pQ"
INSTALLATION_ID = "inst_8GhJ2kL4mN6pQ8rS0tUvWx"
ORDER_ID = "ord_1aB2cD3eF4gH5iJ6kL7mN8"
WEBHOOK_SECRET = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


class StandInFlint(ThreadingHTTPServer):
    """Answers what the app asks Flint. ``named`` is what the token answer adds to Flint's fields
    (``{"merchant_name": ...}``, or nothing as an older Flint); ``expires_in`` its access tokens' life
    (under a minute: the app refreshes before every API call)."""
    named: dict
    expires_in: int = 3600
    asked: list[str]


class Handler(BaseHTTPRequestHandler):
    server: StandInFlint

    def log_message(self, *args) -> None:  # quiet
        pass

    def answer(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:
        body = parse_qs(self.rfile.read(int(self.headers.get("Content-Length", 0))).decode())
        assert self.path == "/oauth/token"
        self.server.asked.append(f"POST {self.path} {body['grant_type'][0]}")
        self.answer(200, {"access_token": "fat_x", "token_type": "Bearer", "expires_in": self.server.expires_in,
                          "refresh_token": "frt_x", "scope": "orders:read payments:read events:read",
                          "installation_id": INSTALLATION_ID, "merchant_id": MERCHANT_ID, **self.server.named})

    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        self.server.asked.append(f"GET {path}")
        assert self.headers["Authorization"] == "Bearer fat_x"
        if path == "/v1/orders":
            self.answer(200, {"object": "list", "has_more": False, "data": [{
                "id": ORDER_ID, "status": "paid", "amount_total": 2400, "currency": "usd",
                "extension_data": {"app_1": {"risk_score": 4, "checked_by": "partner_app",
                                             "fields": {"age_confirmed": True}}}}]})
        else:
            self.answer(404, {"code": "not_found"})


@pytest.fixture
def flint():
    stand_in = StandInFlint(("127.0.0.1", 0), Handler)
    stand_in.asked, stand_in.named = [], {}
    thread = threading.Thread(target=stand_in.serve_forever, daemon=True)
    thread.start()
    yield stand_in
    stand_in.shutdown()
    stand_in.server_close()
    thread.join()


async def install(flint: StandInFlint):
    """The app, installed on MERCHANT_ID (the browser's part of the OAuth dance done by hand)."""
    url = f"http://127.0.0.1:{flint.server_address[1]}"
    app = create_partner_app(url, "fca_x", "fcs_x", WEBHOOK_SECRET, public_url="http://localhost")
    client = app.test_client()
    start = await client.get("/install")
    assert start.status_code == 302
    state = parse_qs(urlsplit(start.headers["Location"]).query)["state"][0]
    installed = await client.get(f"/callback?code=c&state={state}")
    assert installed.status_code == 200, await installed.get_data(as_text=True)
    return app, client, await installed.get_data(as_text=True)


def signed(payload: str, webhook_id: str) -> dict[str, str]:
    now = datetime.now(timezone.utc).replace(microsecond=0)
    return {"webhook-id": webhook_id, "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": Webhook(WEBHOOK_SECRET).sign(webhook_id, now, payload),
            "content-type": "application/json"}


async def hear_and_hook(client) -> None:
    """An order.created webhook of the merchant and one hook call of its installation."""
    event = json.dumps({"id": "evt_1", "type": "order.created", "order_id": ORDER_ID,
                        "installation_id": INSTALLATION_ID, "merchant_id": MERCHANT_ID})
    assert (await client.post("/webhooks", data=event, headers=signed(event, "evt_7hY2kP9wQ3rT5uV8xZ1aB2"))
            ).status_code == 204
    call = json.dumps({"type": "checkout.before_payment", "installation_id": INSTALLATION_ID,
                       "order": {"id": ORDER_ID, "amount_total": 2400, "currency": "usd"},
                       "checkout": {"channel": "hosted"}, "fields": {"age_confirmed": True}})
    assert (await client.post("/hook", data=call, headers=signed(call, "msg_1"))).status_code == 200


def visible(page: str) -> str:
    """The page's text as seen: no tags, no attributes, no visually hidden text."""
    page = re.sub(r'<span class="visually-hidden">.*?</span>', "", page, flags=re.S)
    return html.unescape(re.sub(r"<[^>]+>", "", page))


async def pages(client) -> dict[str, str]:
    shown = {}
    for path in ("/", "/orders", "/events"):
        answer = await client.get(path)
        assert answer.status_code == 200, path
        shown[path] = await answer.get_data(as_text=True)
    return shown


def test_short_ids_keep_the_prefix_and_six_characters():
    assert short_id(MERCHANT_ID) == ("mer_4f9Kq2", "ZbT7xWcD1eLmN3pQ")
    assert short_id("inst_8GhJ2kL4mN6pQ8rS0tUvWx") == ("inst_8GhJ2k", "L4mN6pQ8rS0tUvWx")
    assert short_id("mer_1") == ("mer_1", "") and short_id("mer_12345678") == ("mer_12345678", "")
    assert short_id("nounderscore") == ("nounderscore", "")


def merchant_names(page: str) -> list[str]:
    """The names the page shows for merchants, as a person reads them."""
    return [html.unescape(n) for n in re.findall(r'<span class="merchant-name">(.*?)</span>', page, re.DOTALL)]


async def test_every_page_names_the_merchant_the_token_answer_named(flint):
    flint.named = {"merchant_name": "Acme Coffee Roasters"}
    _, client, installed = await install(flint)
    await hear_and_hook(client)
    shown = {"/callback": installed, **await pages(client)}
    # The name came with the tokens: the app asks Flint nothing else for it (GET /v1/merchant is 403
    # to an app's token).
    assert flint.asked == ["POST /oauth/token authorization_code", "GET /v1/orders"]
    for path, page in shown.items():
        assert "Acme Coffee Roasters" in visible(page), path
        assert set(merchant_names(page)) == {"Acme Coffee Roasters"}, path
        assert MERCHANT_ID not in visible(page), path  # the raw id is not what a person reads...
        assert f'title="{MERCHANT_ID}"' in page, path  # ...but it is there for support
        assert '<span class="visually-hidden">ZbT7xWcD1eLmN3pQ</span>' in page, path  # and for screen readers
        assert "mer_4f9Kq2" in visible(page), path  # and its start, in small print
        assert "Merchant mer_" not in visible(page), path
    assert re.search(r"<h1>Installed on .*Acme Coffee Roasters", installed)
    assert re.search(r"<h1>Orders of .*Acme Coffee Roasters", shown["/orders"])
    assert "Orders of Acme Coffee Roasters" in visible(re.sub(r'class="visually-hidden"', "", shown["/"]))
    event_row, = re.findall(r'<tr class="event">.*?</tr>', shown["/events"], re.S)
    call_row, = re.findall(r'<tr class="hook-call">.*?</tr>', shown["/events"], re.S)
    for row in (event_row, call_row):  # a hook call carries only its installation: the app knows whose
        assert "Acme Coffee Roasters" in row and f'title="{MERCHANT_ID}"' in row


@pytest.mark.parametrize("named", [{}, {"merchant_name": None}], ids=["no merchant_name", "merchant_name null"])
async def test_a_token_answer_without_a_name_shows_merchant_and_a_short_id(flint, named):
    flint.named = named  # an older Flint, whose token answer names no merchant
    _, client, installed = await install(flint)
    await hear_and_hook(client)
    shown = {"/callback": installed, **await pages(client)}
    assert flint.asked == ["POST /oauth/token authorization_code", "GET /v1/orders"]
    for path, page in shown.items():
        assert "Merchant mer_4f9Kq2…" not in visible(page)  # the ellipsis is CSS, not text
        assert re.search(r'<span class="merchant-name">Merchant</span> <code class="id id-short merchant-id" '
                         rf'title="{MERCHANT_ID}">mer_4f9Kq2'
                         r'<span class="visually-hidden">ZbT7xWcD1eLmN3pQ</span></code>', page), path
        assert set(merchant_names(page)) == {"Merchant"}, path
        assert MERCHANT_ID not in visible(page) and "None" not in visible(page), path
    assert 'Orders<span class="visually-hidden"> of merchant mer_4f9Kq2</span></a>' in shown["/"]


async def test_a_merchants_name_is_text_not_markup(flint):
    flint.named = {"merchant_name": '<img src=x onerror=alert(1)> & Co'}
    _, client, installed = await install(flint)
    await hear_and_hook(client)
    for page in [installed, *(await pages(client)).values()]:
        assert "<img" not in page and "&lt;img src=x onerror=alert(1)&gt; &amp; Co" in page
        assert set(merchant_names(page)) == {'<img src=x onerror=alert(1)> & Co'}


async def test_a_long_name_is_capped(flint):
    flint.named = {"merchant_name": "  " + "A" * 150 + "  "}
    _, client, installed = await install(flint)
    await hear_and_hook(client)
    for page in [installed, *(await pages(client)).values()]:
        assert set(merchant_names(page)) == {"A" * 100}


async def test_not_a_name_is_not_used(flint):
    for named in [{"merchant_name": " "}, {"merchant_name": ""}, {"merchant_name": 42},
                  {"merchant_name": ["Acme"]}, {"merchant_name": {"name": "Acme"}}]:
        flint.named = named
        _, _, installed = await install(flint)
        assert merchant_names(installed) == ["Merchant"], named


async def test_every_refresh_brings_the_merchants_current_name(flint):
    """A merchant renamed on Flint reads by its new name once the app has refreshed its tokens; a
    refresh answer naming no one (or another merchant) leaves the name the app knew."""
    flint.named, flint.expires_in = {"merchant_name": "Acme Coffee"}, 30  # refreshed before every call
    _, client, installed = await install(flint)
    assert merchant_names(installed) == ["Acme Coffee"]

    flint.named = {"merchant_name": "Acme Coffee Roasters"}  # renamed on Flint
    orders = await client.get("/orders")
    assert flint.asked[-2:] == ["POST /oauth/token refresh_token", "GET /v1/orders"]
    assert merchant_names(await orders.get_data(as_text=True)) == ["Acme Coffee Roasters"]
    assert set(merchant_names((await pages(client))["/"])) == {"Acme Coffee Roasters"}

    for named in [{}, {"merchant_name": None}, {"merchant_name": "Someone Else", "merchant_id": "mer_someoneElse000000"}]:
        flint.named = named
        orders = await client.get("/orders")
        assert orders.status_code == 200 and flint.asked[-2] == "POST /oauth/token refresh_token", named
        assert merchant_names(await orders.get_data(as_text=True)) == ["Acme Coffee Roasters"], named


async def test_a_name_learnt_at_install_stays_when_no_refresh_is_due(flint):
    """Tokens still fresh: the pages name the merchant from the install's answer, with no call to Flint."""
    flint.named = {"merchant_name": "Acme Coffee"}
    _, client, _ = await install(flint)
    flint.named = {"merchant_name": "Renamed Meanwhile"}
    shown = await client.get("/")
    assert set(merchant_names(await shown.get_data(as_text=True))) == {"Acme Coffee"}
    assert flint.asked == ["POST /oauth/token authorization_code"]
