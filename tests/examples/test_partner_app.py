"""The partner app (examples/partner_app) as a real process on its own loopback port, against a real
``flint serve``: registered with its checkout field (``POST /v1/apps``), a merchant installs it through
Flint's consent page (OAuth 2.0 with PKCE) and the app names it by the name Flint's token answer
gives, then the app reads the merchant's orders with its token (refreshing it, with rotation, and
with it the merchant's current name), hears the merchant's webhooks, and checks its "I am 18 or older" box,
blocks or annotates payments through the ``checkout.before_payment`` hook."""
from __future__ import annotations

import asyncio
import json
import os
import re
import secrets
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from standardwebhooks import Webhook

from examples.partner_app import CHECKOUT_FIELDS, registration
from flint.merchants import service as merchants
from support import ROOT, free_port
from support.server import LiveServer

PASSWORD = "a long and correct password"
CARD = {"number": "4242 4242 4242 4242", "exp_month": 12, "exp_year": 2034, "cvc": "123"}
BLOCKED = "Orders over $500.00 need a phone call first."
AGE_LABEL = "I am 18 or older"
AGE_ERROR = {"type": "field_error", "field": "age_confirmed", "message": "Please confirm you are 18 or older."}


def order_of(unit_amount: int) -> dict:
    return {"currency": "usd", "line_items": [{"name": "Espresso machine", "quantity": 1, "unit_amount": unit_amount}]}


@dataclass
class LiveApp:
    url: str
    app: dict  # Flint's answer to the app's POST /v1/apps
    webhook_secret: str
    log_path: Path
    process: subprocess.Popen = field(repr=False)

    def logs(self) -> str:
        return self.log_path.read_text()


def start_partner_app(tmp: Path, flint_url: str, port: int, client_id: str, client_secret: str,
                      webhook_secret: str) -> subprocess.Popen:
    """``python -m examples.partner_app`` with its secrets in the environment; returns once it listens."""
    log_path = tmp / f"partner-app-{port}.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PARTNER_APP_")}
    env.update(PARTNER_APP_CLIENT_ID=client_id, PARTNER_APP_CLIENT_SECRET=client_secret,
               PARTNER_APP_WEBHOOK_SECRET=webhook_secret)
    with open(log_path, "wb") as log:
        process = subprocess.Popen([sys.executable, "-m", "examples.partner_app", "--host", "127.0.0.1",
                                    "--port", str(port), "--flint-url", flint_url],
                                   cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    while f"partner app listening on http://127.0.0.1:{port}" not in log_path.read_text():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            process.wait()
            raise RuntimeError(f"the partner app did not start:\n{log_path.read_text()[-3000:]}")
        time.sleep(0.05)
    return process


@pytest.fixture
async def partner_app(tmp_path: Path, server: LiveServer, server_rt):
    """The app registered on the live Flint as its developer does it (its own merchant account and
    ``python -m examples.partner_app.register``, the app's own registration body), running."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    _, developer_key = await merchants.create_merchant(server_rt, name="Risk Tools Ltd", password=PASSWORD,
                                                       email=f"dev{secrets.token_hex(4)}@risk.example")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PARTNER_APP_")}
    registered = subprocess.run(
        [sys.executable, "-m", "examples.partner_app.register", "--flint-url", server.url, "--public-url", url],
        cwd=ROOT, env={**env, "PARTNER_APP_DEVELOPER_KEY": developer_key}, capture_output=True, text=True,
        timeout=60)
    assert registered.returncode == 0, registered.stderr
    printed = dict(re.findall(r"^(PARTNER_APP_[A-Z_]+)=(\S+)$", registered.stdout, re.M))
    app_id = re.search(r"^registered (app_[0-9A-Za-z]+);", registered.stdout, re.M).group(1)
    async with server.async_client(developer_key) as developer:
        app = (await developer.get(f"/v1/apps/{app_id}")).json()
    assert app["client_id"] == printed["PARTNER_APP_CLIENT_ID"]
    webhook_secret = printed["PARTNER_APP_WEBHOOK_SECRET"]
    process = start_partner_app(tmp_path, server.url, port, app["client_id"], printed["PARTNER_APP_CLIENT_SECRET"],
                                webhook_secret)
    live = LiveApp(url, app, webhook_secret, tmp_path / f"partner-app-{port}.log", process)
    yield live
    process.terminate()
    try:
        assert process.wait(timeout=10) == 0, live.logs()[-2000:]
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert "Traceback" not in live.logs()


@pytest.fixture
async def shop(server_rt):
    """The merchant who installs the app: (merchant, secret key)."""
    return await merchants.create_merchant(server_rt, name="Acme Coffee", password=PASSWORD,
                                           email=f"owner{secrets.token_hex(4)}@acme.example")


@pytest.fixture
async def browser():
    """One browser for Flint and the app (cookies are per host, not per port, as in a real browser)."""
    async with httpx.AsyncClient(follow_redirects=False, timeout=30) as client:
        yield client


def field_of(html: str, name: str) -> str:
    return re.search(rf'name="{name}" value="([^"]+)"', html).group(1)


async def sign_in(browser: httpx.AsyncClient, server: LiveServer, email: str) -> None:
    page = await browser.get(f"{server.url}/login")
    done = await browser.post(f"{server.url}/login", data={"csrf_token": field_of(page.text, "csrf_token"),
                                                           "email": email, "password": PASSWORD})
    assert done.status_code == 303, done.text


async def authorize(browser: httpx.AsyncClient, server: LiveServer, live: LiveApp, decision: str) -> httpx.Response:
    """Press "Install on Flint", answer Flint's consent page, land on the app's /callback."""
    start = await browser.get(f"{live.url}/install")
    assert start.status_code in (302, 303)
    authorize_url = start.headers["location"]
    assert authorize_url.startswith(f"{server.url}/oauth/authorize?")
    query = parse_qs(urlsplit(authorize_url).query)
    assert query["client_id"] == [live.app["client_id"]] and query["code_challenge_method"] == ["S256"]
    assert query["redirect_uri"] == [f"{live.url}/callback"] and len(query["code_challenge"][0]) == 43
    assert "code_verifier" not in query and query["state"][0]
    consent = await browser.get(authorize_url)
    assert consent.status_code == 200 and "Risk Check" in consent.text, consent.text
    assert AGE_LABEL in consent.text  # the consent page lists the field the app adds to checkouts
    answered = await browser.post(f"{server.url}/oauth/authorize",
                                  data={"consent": field_of(consent.text, "consent"), "decision": decision})
    assert answered.status_code == 303 and answered.headers["location"].startswith(f"{live.url}/callback?")
    return await browser.get(answered.headers["location"])


async def wait_for_event(browser: httpx.AsyncClient, live: LiveApp, event_type: str, order_id: str | None = None,
                         seconds: float = 15) -> str:
    deadline = time.monotonic() + seconds
    while True:
        page = await browser.get(f"{live.url}/events")
        rows = re.findall(r'<tr class="event">.*?</tr>', page.text, re.S)
        if any(f'<td class="event-type">{event_type}</td>' in row and (order_id is None or order_id in row)
               for row in rows):
            return page.text
        assert time.monotonic() < deadline, f"{event_type} {order_id or ''} did not reach the app in {seconds} s"
        await asyncio.sleep(0.2)


async def test_install_read_orders_hear_webhooks_and_hook_payments(server, server_rt, partner_app, shop, browser):
    merchant, key = shop
    async with server.async_client(key) as owner:
        earlier = (await owner.post("/v1/orders", json=order_of(2400))).json()

    # The install: sign in at Flint, "Install on Flint" on the app, approve, back on the app.
    await sign_in(browser, server, merchant.email)
    installed = await authorize(browser, server, partner_app, "approve")
    assert installed.status_code == 200, installed.text
    # Flint's token answer named the merchant (merchant_name, docs/api.md 10): the pages show its name
    # and a short id, the whole id in the title and, visually hidden, in the text. The app asked Flint
    # nothing else for it (GET /v1/merchant is 403 to an app's token).
    def shown_as(name: str) -> str:
        return (f'<span class="merchant-name">{name}</span> <code class="id id-short merchant-id" '
                f'title="{merchant.id}">{merchant.id[:10]}'
                f'<span class="visually-hidden">{merchant.id[10:]}</span></code>')

    assert merchant.name == "Acme Coffee"
    assert f'<h1>Installed on <span class="merchant">{shown_as("Acme Coffee")}</span></h1>' in installed.text
    assert '<span class="merchant-name">Merchant</span>' not in installed.text
    assert "/v1/merchant" not in partner_app.logs()
    installation_id = re.search(r'class="installation-id">(inst_[0-9A-Za-z]+)<', installed.text).group(1)
    home = await browser.get(f"{partner_app.url}/")
    assert f'title="{installation_id}"' in home.text and shown_as("Acme Coffee") in home.text
    assert "Orders<span class=\"visually-hidden\"> of Acme Coffee</span>" in home.text
    async with server.async_client(key) as owner:
        [listed] = (await owner.get("/v1/installations")).json()["data"]
        assert (listed["id"], listed["app_id"], listed["status"]) == (installation_id, partner_app.app["id"], "active")

    # A scoped API call with the stored token: the merchant's orders, as Flint lists them to the app.
    orders = await browser.get(f"{partner_app.url}/orders", params={"installation": installation_id})
    assert orders.status_code == 200 and f'<code class="order-id">{earlier["id"]}</code>' in orders.text

    # Webhooks: app.installed, then an order the merchant creates, verified and listed by the app.
    await wait_for_event(browser, partner_app, "app.installed")
    async with server.async_client(key) as owner:
        created = (await owner.post("/v1/orders", json=order_of(1500))).json()
    events = await wait_for_event(browser, partner_app, "order.created", created["id"])
    row = next(r for r in re.findall(r'<tr class="event">.*?</tr>', events, re.S) if created["id"] in r)
    assert f'title="{installation_id}"' in row and shown_as("Acme Coffee") in row

    # The hook and the app's field: its box is on every checkout of the merchant now. Left unticked,
    # Flint refuses the attempt at the app's field, and nothing is paid...
    app_id = partner_app.app["id"]
    ticked = {"app_fields": {app_id: {"age_confirmed": True}}}
    async with server.async_client(key) as owner:
        big = (await owner.post("/v1/checkout/sessions", json={"order": order_of(60_000), "mode": "embedded",
                                                               "success_url": "https://shop.example/thanks"})).json()
        small = (await owner.post("/v1/checkout/sessions", json={"order": order_of(2400), "mode": "embedded",
                                                                 "success_url": "https://shop.example/thanks"})).json()
    async with server.async_client(small["client_token"]) as buyer:
        confirm = f"/v1/checkout/sessions/{small['id']}/confirm"
        unticked = [await buyer.post(confirm, json={"card": CARD}),
                    await buyer.post(confirm, json={"card": CARD, "app_fields": {app_id: {"age_confirmed": False}}})]
    for answer in unticked:
        assert answer.status_code == 400 and answer.json()["code"] == "invalid_field", answer.text
        assert [e["param"] for e in answer.json()["errors"]] == [f"app_fields.{app_id}.age_confirmed"]
    # ...an order over $500.00, box ticked, is blocked with the app's words, and no payment is made...
    async with server.async_client(big["client_token"]) as buyer:
        refused = await buyer.post(f"/v1/checkout/sessions/{big['id']}/confirm", json={"card": CARD, **ticked})
    assert refused.status_code == 402, refused.text
    assert (refused.json()["code"], refused.json()["detail"]) == ("blocked_by_extension", BLOCKED)
    # ...and a small one, box ticked, is paid, with the app's risk score and the buyer's answer kept
    # under the app's id in the order.
    async with server.async_client(small["client_token"]) as buyer:
        paid = await buyer.post(f"/v1/checkout/sessions/{small['id']}/confirm", json={"card": CARD, **ticked})
    assert paid.status_code == 200 and paid.json()["status"] == "succeeded", paid.text
    async with server.async_client(key) as owner:
        order = (await owner.get(f"/v1/orders/{small['order_id']}")).json()
        assert order["extension_data"][app_id] == {"risk_score": 4, "checked_by": "partner_app",
                                                   "fields": {"age_confirmed": True}}
        assert [p["status"] for p in (await owner.get("/v1/payments", params={"order": small["order_id"]})).json()[
            "data"]] == ["succeeded"]  # the unticked attempts made none
        assert (await owner.get("/v1/payments", params={"order": big["order_id"]})).json()["data"] == []
        calls = (await owner.get("/v1/hook_calls", params={"order": big["order_id"]})).json()["data"]
        assert [(c["app_id"], c["outcome"], c["applied"]) for c in calls] == [(app_id, "answered", ["block"])]
    events = await wait_for_event(browser, partner_app, "payment.succeeded", small["order_id"])
    calls = re.findall(r'<tr class="hook-call">.*?</tr>', events, re.S)
    assert any(big["order_id"] in row and 'class="hook-answer">block</td>' in row for row in calls), calls
    assert any(small["order_id"] in row and f'class="hook-fields">{AGE_LABEL}: yes</td>' in row
               and 'class="hook-answer">annotate</td>' in row and shown_as("Acme Coffee") in row
               for row in calls), calls
    orders = await browser.get(f"{partner_app.url}/orders", params={"installation": installation_id})
    assert f'<h1>Orders of <span class="merchant">{shown_as("Acme Coffee")}</span></h1>' in orders.text
    assert re.search(rf'{small["order_id"]}</code></td><td data-label="Status" class="order-status">paid</td>\s*'
                     r'<td data-label="Total" class="num">\$24.00</td><td data-label="Risk score" class="num">4</td>\s*'
                     rf'<td data-label="Buyer\'s answers" class="order-fields">{AGE_LABEL}: yes</td>',
                     orders.text), orders.text

    # Expired tokens: Flint answers 401, the app refreshes and retries; twice, so the second refresh
    # proves it kept the rotated refresh token (presenting a spent one would have ended the grant).
    # Every refresh answer names the merchant too: renamed on Flint in between, it reads by its new
    # name from the next refresh on.
    for name in ("Acme Coffee Roasters", "Acme Coffee & Tea <Est. 2019>"):
        async with server_rt.db.transaction() as conn:
            await conn.execute("UPDATE oauth_tokens SET expires_at = '2020-01-01T00:00:00.000000Z' "
                               "WHERE kind = 'access'")
            await conn.execute("UPDATE merchants SET name = :name WHERE id = :id", {"name": name, "id": merchant.id})
        again = await browser.get(f"{partner_app.url}/orders", params={"installation": installation_id})
        assert again.status_code == 200 and earlier["id"] in again.text, again.text
        escaped = name.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        assert f'<h1>Orders of <span class="merchant">{shown_as(escaped)}</span></h1>' in again.text
        home = await browser.get(f"{partner_app.url}/")
        assert shown_as(escaped) in home.text and "Acme Coffee</span>" not in home.text
    assert partner_app.logs().count(f"refreshed the tokens of {installation_id}") == 2

    # Uninstalled: app.uninstalled reaches the app, which forgets the installation's tokens.
    async with server.async_client(key) as owner:
        assert (await owner.delete(f"/v1/installations/{installation_id}")).status_code == 200
    await wait_for_event(browser, partner_app, "app.uninstalled")
    gone = await browser.get(f"{partner_app.url}/orders", params={"installation": installation_id})
    assert gone.status_code == 404 and "Install the app" in gone.text


async def test_a_declined_install_and_a_forged_callback_are_readable_refusals(server, partner_app, shop, browser):
    merchant, _ = shop
    await sign_in(browser, server, merchant.email)
    declined = await authorize(browser, server, partner_app, "deny")
    assert declined.status_code == 200 and "The install was declined on Flint" in declined.text
    assert "<code class=\"installation-id\">" not in (await browser.get(f"{partner_app.url}/")).text
    # A callback whose state this browser never started (a login-CSRF attempt) exchanges nothing.
    forged = await browser.get(f"{partner_app.url}/callback", params={"code": "stolen", "state": "not-mine"})
    assert forged.status_code == 400 and "does not match an install started in this browser" in forged.text


async def test_the_app_registers_its_checkout_field(partner_app):
    """What Flint kept from the app's own registration body: the checkbox it adds to checkouts."""
    assert [{key: spec[key] for key in ("key", "label", "type", "required")}
            for spec in partner_app.app["checkout_fields"]] == CHECKOUT_FIELDS == [
        {"key": "age_confirmed", "label": AGE_LABEL, "type": "checkbox", "required": True}]
    assert registration(partner_app.url)["checkout_fields"] == CHECKOUT_FIELDS
    assert (partner_app.app["hooks"], partner_app.app["hook_url"]) == (["checkout.before_payment"],
                                                                       f"{partner_app.url}/hook")


def signed(secret: str, payload: str, webhook_id: str = "msg_1") -> dict[str, str]:
    now = datetime.now(timezone.utc).replace(microsecond=0)
    return {"webhook-id": webhook_id, "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": Webhook(secret).sign(webhook_id, now, payload), "content-type": "application/json"}


async def test_the_hook_answers_field_error_until_the_box_is_ticked(partner_app):
    """The hook's body carries ``fields``, the buyer's answers to this app's own fields: anything but a
    ticked box is a field_error at the box; a ticked one goes on to the limit and the risk score."""
    def call(amount: int, **extra) -> str:
        return json.dumps({"type": "checkout.before_payment", "installation_id": "inst_1",
                           "order": {"id": f"ord_{amount}", "amount_total": amount, "currency": "usd"},
                           "checkout": {"channel": "embedded"}, "customer": {"email": "ada@example.com"}, **extra})

    cases = [
        (call(2400, fields={"age_confirmed": False}), [AGE_ERROR]),
        (call(2400, fields={}), [AGE_ERROR]),
        (call(2400), [AGE_ERROR]),  # no fields at all: not confirmed either
        (call(2400, fields={"age_confirmed": "true"}), [AGE_ERROR]),  # only a ticked box (true) confirms
        (call(2400, fields={"age_confirmed": True}),
         [{"type": "annotate", "data": {"risk_score": 4, "checked_by": "partner_app"}}]),
        (call(60_000, fields={"age_confirmed": True}), [{"type": "block", "message": BLOCKED}]),
        (call(60_000, fields={"age_confirmed": False}), [AGE_ERROR]),  # the box first: the buyer can fix it
    ]
    async with httpx.AsyncClient(base_url=partner_app.url, timeout=10) as client:
        for i, (body, actions) in enumerate(cases):
            answered = await client.post("/hook", content=body, headers=signed(partner_app.webhook_secret, body, f"msg_{i}"))
            assert answered.status_code == 200
            assert answered.json() == {"actions": actions}, body
        page = await client.get("/events")
    rows = re.findall(r'<tr class="hook-call">.*?</tr>', page.text, re.S)
    assert len(rows) == len(cases)
    assert sum(f'class="hook-fields">{AGE_LABEL}: no</td>' in row for row in rows) == 2
    assert sum(f'class="hook-fields">{AGE_LABEL}: yes</td>' in row for row in rows) == 2
    assert sum('class="hook-answer">field_error</td>' in row for row in rows) == 5


async def test_unsigned_or_forged_webhooks_and_hook_calls_are_refused(partner_app):
    body = ('{"type": "checkout.before_payment", "order": {"amount_total": 1, "currency": "usd"}, '
            '"fields": {"age_confirmed": true}}')
    event = ('{"id": "evt_1", "type": "order.created", "order_id": "ord_1", "installation_id": "inst_1", '
             '"merchant_id": "mer_1"}')
    someone_else = "whsec_" + "A" * 43 + "="
    async with httpx.AsyncClient(base_url=partner_app.url, timeout=10) as client:
        for path in ("/hook", "/webhooks"):
            assert (await client.post(path, content=body)).status_code == 401
            assert (await client.post(path, content=body, headers=signed(someone_else, body))).status_code == 401
        answered = await client.post("/hook", content=body, headers=signed(partner_app.webhook_secret, body))
        assert answered.status_code == 200
        assert answered.json() == {"actions": [{"type": "annotate",
                                                "data": {"risk_score": 0, "checked_by": "partner_app"}}]}
        # A redelivery (the same webhook-id) is acknowledged again but kept once.
        for _ in range(2):
            delivered = await client.post("/webhooks", content=event, headers=signed(partner_app.webhook_secret, event))
            assert delivered.status_code == 204
        page = await client.get("/events")
        assert page.text.count('<tr class="event">') == 1 and "ord_1" in page.text
