"""The partner app's pages name merchants (issue 16): by the name Flint tells the app, or, while Flint
tells an app none (today ``GET /v1/merchant`` answers an app's token 403, docs/api.md 10), as
"Merchant" and a short id; the whole id stays in the page for support (title, visually hidden text).

The app runs in this process (Quart's test client) against a stand-in for Flint's three endpoints it
calls (``POST /oauth/token``, ``GET /v1/merchant``, ``GET /v1/orders``), so both answers can be shown;
tests/examples/test_partner_app.py installs it on a real Flint, and e2e/test_partner_app_pages.py
checks the pages' layout in Chromium."""
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
    """Answers what the app asks Flint; ``merchant`` is GET /v1/merchant's (status, body)."""
    merchant: tuple[int, dict] = (403, {})
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
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.server.asked.append(f"POST {self.path}")
        assert self.path == "/oauth/token"
        self.answer(200, {"access_token": "fat_x", "token_type": "Bearer", "expires_in": 3600,
                          "refresh_token": "frt_x", "scope": "orders:read payments:read events:read",
                          "installation_id": INSTALLATION_ID, "merchant_id": MERCHANT_ID})

    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        self.server.asked.append(f"GET {path}")
        assert self.headers["Authorization"] == "Bearer fat_x"
        if path == "/v1/merchant":
            self.answer(*self.server.merchant)
        elif path == "/v1/orders":
            self.answer(200, {"object": "list", "has_more": False, "data": [{
                "id": ORDER_ID, "status": "paid", "amount_total": 2400, "currency": "usd",
                "extension_data": {"app_1": {"risk_score": 4, "checked_by": "partner_app",
                                             "fields": {"age_confirmed": True}}}}]})
        else:
            self.answer(404, {"code": "not_found"})


@pytest.fixture
def flint():
    stand_in = StandInFlint(("127.0.0.1", 0), Handler)
    stand_in.asked = []
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


async def test_every_page_names_the_merchant_flint_named(flint):
    flint.merchant = (200, {"id": MERCHANT_ID, "object": "merchant", "name": "Acme Coffee Roasters"})
    _, client, installed = await install(flint)
    assert flint.asked == ["POST /oauth/token", "GET /v1/merchant"]
    await hear_and_hook(client)
    shown = {"/callback": installed, **await pages(client)}
    for path, page in shown.items():
        assert "Acme Coffee Roasters" in visible(page), path
        assert MERCHANT_ID not in visible(page), path  # the raw id is not what a person reads...
        assert f'title="{MERCHANT_ID}"' in page, path  # ...but it is there for support
        assert "mer_4f9Kq2" in visible(page), path  # and its start, in small print
    assert re.search(r"<h1>Installed on .*Acme Coffee Roasters", installed)
    assert re.search(r"<h1>Orders of .*Acme Coffee Roasters", shown["/orders"])
    assert "Orders of Acme Coffee Roasters" in visible(re.sub(r'class="visually-hidden"', "", shown["/"]))
    event_row, = re.findall(r'<tr class="event">.*?</tr>', shown["/events"], re.S)
    call_row, = re.findall(r'<tr class="hook-call">.*?</tr>', shown["/events"], re.S)
    for row in (event_row, call_row):  # a hook call carries only its installation: the app knows whose
        assert "Acme Coffee Roasters" in row and f'title="{MERCHANT_ID}"' in row


async def test_while_flint_tells_no_name_the_pages_say_merchant_and_a_short_id(flint):
    flint.merchant = (403, {"code": "forbidden"})  # what Flint answers an app's token today
    _, client, installed = await install(flint)
    await hear_and_hook(client)
    shown = {"/callback": installed, **await pages(client)}
    for path, page in shown.items():
        assert "Merchant mer_4f9Kq2…" not in visible(page)  # the ellipsis is CSS, not text
        assert re.search(r'<span class="merchant-name">Merchant</span> <code class="id id-short merchant-id" '
                         rf'title="{MERCHANT_ID}">mer_4f9Kq2'
                         r'<span class="visually-hidden">ZbT7xWcD1eLmN3pQ</span></code>', page), path
        assert MERCHANT_ID not in visible(page) and "None" not in visible(page), path
    assert 'Orders<span class="visually-hidden"> of merchant mer_4f9Kq2</span></a>' in shown["/"]


async def test_a_merchants_name_is_text_not_markup(flint):
    flint.merchant = (200, {"id": MERCHANT_ID, "object": "merchant", "name": '<img src=x onerror=alert(1)> & Co'})
    _, client, installed = await install(flint)
    await hear_and_hook(client)
    for page in [installed, *(await pages(client)).values()]:
        assert "<img" not in page and "&lt;img src=x onerror=alert(1)&gt; &amp; Co" in page


async def test_a_name_for_another_merchant_or_not_a_name_is_not_used(flint):
    for answer in [{"id": "mer_someoneElse0000000000", "name": "Someone Else"}, {"id": MERCHANT_ID, "name": " "},
                   {"id": MERCHANT_ID, "name": 42}, {"id": MERCHANT_ID}]:
        flint.merchant = (200, answer)
        _, _, installed = await install(flint)
        assert '<span class="merchant-name">Merchant</span>' in installed, answer
