"""``flint demo``: one process runs Flint, the demo shop and the demo partner app on three origins,
prints the URLs and a working secret key, delivers the merchant's webhooks to the shop, registers the
partner app (which installs through Flint's consent page), and stops cleanly on SIGTERM. Its seeding
is idempotent across re-runs; the first seeds a week of activity for the console (paid, declined,
refunded and recovered orders, a failing webhook endpoint, the partner app installed), a re-run none."""
from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
from standardwebhooks import Webhook

from flint import clock
from flint.apps import service as apps
from flint.background.webhook_worker import deliver_due
from flint.config import Config
from flint.demo import (
    DEMO_APP_NAME,
    DEMO_APP_SCOPES,
    DEMO_EMAIL,
    DEMO_PASSWORD,
    DEMO_WEBHOOK_DESCRIPTION,
    Seeded,
    _banner,
    seed,
    shop_origins,
)
from flint.demo_activity import FAILING_WEBHOOK_DESCRIPTION, FAILING_WEBHOOK_PATH, REFERENCE_PREFIX, WEEK
from flint.links import service as links
from flint.merchants import service as merchants
from flint.oauth import service as oauth
from flint.orders import service as orders_service
from flint.orders import store as order_store
from flint.payments import service as payments_service
from flint.runtime import Runtime
from flint.webhooks import service as webhooks
from support import ROOT, TEST_SECRET, free_port
from support.receiver import Receiver

CARD = {"number": "4242 4242 4242 4242", "exp_month": 12, "exp_year": 2030, "cvc": "123"}
# The demo shop asks for an email and a shipping address to DE, FR or US (examples/shop COLLECT).
CUSTOMER = {"email": "ada@example.com", "shipping_address": {
    "country": "FR", "line1": "1 rue de Rivoli", "city": "Paris", "postal_code": "75001"}}


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


async def test_flint_demo_serves_flint_the_shop_and_the_partner_app_then_stops_cleanly(tmp_path: Path):
    port, shop_port, app_port = free_port(), free_port(), free_port()
    flint_url, shop_url = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{shop_port}"
    app_url = f"http://127.0.0.1:{app_port}"
    env = {k: v for k, v in os.environ.items() if k != "FLINT_PUBLIC_URL"}
    env.update(FLINT_DATABASE_URL=f"sqlite:///{tmp_path / 'demo.sqlite3'}", FLINT_SECRET_KEY=TEST_SECRET,
               FLINT_ENV="development")
    out_path, err_path = tmp_path / "demo.out", tmp_path / "demo.err"
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        process = subprocess.Popen([sys.executable, "-m", "flint.cli", "demo", "--port", str(port),
                                    "--shop-port", str(shop_port), "--app-port", str(app_port)],
                                   cwd=ROOT, env=env, stdout=out, stderr=err)
    try:
        deadline = time.monotonic() + 30
        while not (_answers(f"{flint_url}/healthz") and _answers(f"{shop_url}/healthz")
                   and _answers(f"{app_url}/healthz") and "Press Ctrl+C" in out_path.read_text()):
            assert process.poll() is None, err_path.read_text()[-3000:]
            assert time.monotonic() < deadline, "flint demo did not come up in 30 s:\n" + err_path.read_text()[-3000:]
            time.sleep(0.1)

        printed = out_path.read_text()
        assert f"Open this in a browser: {shop_url}/" in printed
        assert re.search(rf"Console:\s+{re.escape(flint_url)}/dashboard\n\s+sign in as {re.escape(DEMO_EMAIL)} / "
                         rf"{re.escape(DEMO_PASSWORD)}", printed), printed
        assert f"Flint:         {flint_url}" in printed
        assert f"{flint_url}/v1/openapi.json" in printed and DEMO_EMAIL in printed
        assert re.search(rf"Webhooks:\s+{re.escape(shop_url)}/webhooks\n.*endpoint we_[0-9A-Za-z]+, all events",
                         printed), printed
        assert re.search(rf"Partner app:\s+{re.escape(app_url)}/\n.*\(app app_[0-9A-Za-z]+\): "
                         rf"sign in as {re.escape(DEMO_EMAIL)} / {re.escape(DEMO_PASSWORD)}, then click Install\.",
                         printed), printed
        keys = re.findall(r"Secret key:\s+(sk_test_[0-9A-Za-z]+)", printed)
        assert len(keys) == 1
        secret = keys[0]

        async with httpx.AsyncClient(base_url=shop_url, timeout=30) as browser, \
                httpx.AsyncClient(base_url=flint_url, timeout=30,
                                  headers={"Authorization": f"Bearer {secret}"}) as flint:
            assert (await flint.get("/healthz")).status_code == 200
            home = await browser.get("/")
            assert home.status_code == 200 and "Buy now" in home.text
            # The seeded warehouse endpoint points at a page the shop does not have: its deliveries fail.
            assert (await browser.post(FAILING_WEBHOOK_PATH, content=b"{}")).status_code == 404
            # The printed key is live, and the shop's origins may embed Flint's widget.
            me = (await flint.get("/v1/merchant")).json()
            assert {shop_url, f"http://localhost:{shop_port}"} <= set(me["allowed_origins"])
            # The shop in the demo talks to this Flint: a purchase lands as an embedded session there.
            bought = await browser.post("/checkout", data={"quantity": "1"})
            assert bought.status_code == 303
            session_id = bought.headers["location"].rsplit("/", 1)[1]
            session = (await flint.get(f"/v1/checkout/sessions/{session_id}")).json()
            assert session["mode"] == "embedded" and session["success_url"].startswith(shop_url)
            assert session["collect"]["email"] == "required"
            assert session["collect"]["shipping_address"] == {"allowed_countries": ["DE", "FR", "US"]}
            pay = await browser.get(f"/pay/{session_id}")
            assert f'<script src="{flint_url}/widget/v1/flint.js" defer></script>' in pay.text

            # The buyer pays with the token the page mounts the widget with; Flint's webhooks reach the
            # shop, which verified them with the secret the demo handed it, and its page lists them.
            options = re.search(r'<script type="application/json" id="flint-widget">(.*?)</script>', pay.text, re.S)
            token = json.loads(options.group(1))["clientToken"]
            paid = await flint.post(f"/v1/checkout/sessions/{session_id}/confirm",
                                    json={"card": CARD, "customer": CUSTOMER},
                                    headers={"Authorization": f"Bearer {token}"})
            assert paid.status_code == 200 and paid.json()["status"] == "succeeded", paid.text
            # The seeded checkout's events, sent as the demo started, arrive as well.
            seeded_id = re.search(r"Pay the demo checkout (cs_[0-9A-Za-z]+)", printed).group(1)
            seeded_order = (await flint.get(f"/v1/checkout/sessions/{seeded_id}")).json()["order_id"]
            wanted = {("order.paid", session["order_id"]), ("payment.succeeded", session["order_id"]),
                      ("order.created", seeded_order)}
            deadline = time.monotonic() + 15
            while True:
                hooks = await browser.get("/webhooks")
                assert hooks.status_code == 200
                listed = set(re.findall(r'<td class="event-type">([^<]+)</td><td><code class="event-id">[^<]+</code>'
                                        r'</td><td><code class="order-id">([^<]+)</code>', hooks.text))
                if wanted <= listed:
                    break
                assert time.monotonic() < deadline, f"missing at the shop after 15 s: {wanted - listed}"
                await asyncio.sleep(0.2)
            assert "✓</span> verified" in hooks.text and "0 rejected" in hooks.text

        # The partner app answers on its own origin, and its install button leads to this Flint's
        # consent page, which the demo merchant reaches after signing in.
        async with httpx.AsyncClient(timeout=30) as person:
            home = await person.get(f"{app_url}/")
            assert home.status_code == 200 and 'href="/install">Install on Flint</a>' in home.text
            start = await person.get(f"{app_url}/install")
            assert start.status_code == 302 and start.headers["location"].startswith(f"{flint_url}/oauth/authorize?")
            login = await person.get(f"{flint_url}/login")
            csrf = re.search(r'name="csrf_token" value="([^"]+)"', login.text).group(1)
            signed_in = await person.post(f"{flint_url}/login", data={
                "csrf_token": csrf, "email": DEMO_EMAIL, "password": DEMO_PASSWORD})
            assert signed_in.status_code == 303
            consent = await person.get(start.headers["location"])
            assert consent.status_code == 200 and DEMO_APP_NAME in consent.text and "Approve" in consent.text
            consent_token = re.search(r'name="consent" value="([^"]+)"', consent.text).group(1)
            approved = await person.post(f"{flint_url}/oauth/authorize",
                                         data={"consent": consent_token, "decision": "approve"})
            assert approved.headers["location"].startswith(f"{app_url}/callback?")
            installed = await person.get(approved.headers["location"])
            assert installed.status_code == 200 and "Installed on" in installed.text and me["id"] in installed.text
            orders = await person.get(f"{app_url}/orders")  # the demo merchant's orders, with the app's token
            assert orders.status_code == 200 and session["order_id"] in orders.text
            deadline = time.monotonic() + 15  # the app hears its install, signed with the secret the demo gave it
            while '<td class="event-type">app.installed</td>' not in (await person.get(f"{app_url}/events")).text:
                assert time.monotonic() < deadline, "app.installed did not reach the partner app in 15 s"
                await asyncio.sleep(0.2)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            code = process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            raise AssertionError("flint demo did not stop within 10 s of SIGTERM")
    assert code == 0, err_path.read_text()[-3000:]
    assert not _answers(f"{flint_url}/healthz") and not _answers(f"{shop_url}/healthz")
    assert "Traceback" not in err_path.read_text()
    # The terminal shows people the URLs and says where the logs are; the request log is in that file.
    log_file = tmp_path / "flint-demo.log"
    assert f"Logs:          {log_file}" in printed
    requests_logged = [json.loads(line) for line in log_file.read_text().splitlines() if line.startswith("{")]
    assert any(entry.get("path") == "/healthz" for entry in requests_logged), requests_logged[-5:]
    assert '"path": "/healthz"' not in err_path.read_text() and '"path": "/healthz"' not in printed


async def test_seeding_twice_keeps_one_merchant_adds_origins_and_makes_a_fresh_key(tmp_path: Path):
    config = Config(database_url=f"sqlite:///{tmp_path / 'demo.sqlite3'}", secret_keys=(TEST_SECRET,), env="development",
                    public_url="http://127.0.0.1:8000")
    first = await seed(config, shop_origins("127.0.0.1", 8001), "http://127.0.0.1:8001", "http://127.0.0.1:8002")
    second = await seed(config, shop_origins("127.0.0.1", 9001), "http://127.0.0.1:9001", "http://127.0.0.1:9002")
    assert first.merchant_id == second.merchant_id
    assert first.secret_key != second.secret_key and second.secret_key.startswith("sk_test_")
    assert set(second.allowed_origins) == {"http://127.0.0.1:8001", "http://localhost:8001",
                                           "http://127.0.0.1:9001", "http://localhost:9001"}
    assert first.session_id != second.session_id and second.client_token
    # One webhook endpoint for the demo shop, moved to this run's shop, with a fresh secret.
    assert first.webhook_endpoint_id == second.webhook_endpoint_id
    assert first.webhook_secret.startswith("whsec_") and second.webhook_secret.startswith("whsec_")
    assert first.webhook_secret != second.webhook_secret

    rt = await Runtime.start(config)
    try:
        endpoints, _ = await webhooks.list_endpoints(rt, first.merchant_id, 100, None)
        shops = [e for e in endpoints if e.description != FAILING_WEBHOOK_DESCRIPTION]  # and the week's failing one
        assert [(e.id, e.url, e.event_filters, e.status, e.description) for e in shops] == [
            (first.webhook_endpoint_id, "http://127.0.0.1:9001/webhooks", ["*"], "enabled", DEMO_WEBHOOK_DESCRIPTION)]
        assert len(endpoints) == 2
        # Deliveries are signed with the new secret (and, for the rotation's overlap, the old one).
        live = webhooks.signing_secrets(rt, shops[0], clock.now_iso())
        assert second.webhook_secret in live
        Webhook(second.webhook_secret)  # a secret the shop can verify with
        for secret in (first.secret_key, second.secret_key):  # re-running does not revoke a key in use
            key = await merchants.authenticate_secret_key(rt, secret)
            assert key is not None and key.merchant_id == first.merchant_id
        merchant = await merchants.get_merchant(rt, first.merchant_id)
        assert json.loads(merchant.allowed_origins) == sorted(second.allowed_origins)

        # One demo partner app, developed by the demo merchant, moved to this run's app URL, with
        # fresh secrets: the previous client secret stops working, the new one works.
        [app] = (await apps.list_apps(rt, first.merchant_id, 100, None))[0]
        assert app.name == DEMO_APP_NAME and app.id == first.partner_app.app_id == second.partner_app.app_id
        assert (app.redirect_uri_list, app.webhook_url, app.hook_url) == (
            ["http://127.0.0.1:9002/callback"], "http://127.0.0.1:9002/webhooks", "http://127.0.0.1:9002/hook")
        assert (app.scope_list, app.event_filters, app.hook_list) == (
            ["orders:read", "payments:read", "events:read"], ["order.*", "payment.*"], ["checkout.before_payment"])
        # Its age checkbox, which the demo checkout shows once the merchant installed it (docs/api.md 14).
        assert [f["key"] for f in app.checkout_field_list] == ["age_confirmed"]
        assert await apps.authenticate_client(rt, app.client_id, first.partner_app.client_secret) is None
        assert await apps.authenticate_client(rt, app.client_id, second.partner_app.client_secret) is not None
        assert second.partner_app.webhook_secret != first.partner_app.webhook_secret
        assert second.partner_app.webhook_secret in apps.webhook_signing_secrets(rt, app, clock.now_iso())
    finally:
        await rt.stop()


async def _all(list_page, *args) -> list:
    """Every row of a service's list (limit, starting_after), page by page."""
    rows, after = [], None
    while True:
        page, has_more = await list_page(*args, 100, after)
        rows += page
        if not has_more or not page:
            return rows
        after = page[-1].id


async def test_the_first_seed_makes_a_week_for_the_console_and_a_second_adds_none(tmp_path: Path):
    receiver = Receiver().start()
    try:
        # The demo shop answers 404 where the warehouse endpoint points (it has no such page): the
        # receiver stands in for it, at the shop's URL.
        shop_url = receiver.url("/shop")
        receiver.script(f"/shop{FAILING_WEBHOOK_PATH}", [404])
        config = Config(database_url=f"sqlite:///{tmp_path / 'demo.sqlite3'}", secret_keys=(TEST_SECRET,),
                        env="development", public_url="http://127.0.0.1:8000",
                        webhook_retry_schedule=(60, 600))
        first = await seed(config, shop_origins("127.0.0.1", 8001), shop_url, "http://127.0.0.1:8002")
        rt = await Runtime.start(config)
        try:
            merchant_id = first.merchant_id
            orders = await _all(orders_service.list_orders, rt, merchant_id)
            week = [o for o in orders if (o.reference or "").startswith(REFERENCE_PREFIX)]
            assert len(week) == len(WEEK) >= 40
            # The buyers' details are on the orders: the console's search by email finds them.
            assert all(json.loads(o.customer)["shipping_address"] for o in week if o.status != "canceled"
                       and o.customer)
            async with rt.db.read() as conn:
                found, _ = await order_store.search_orders_page(conn, merchant_id, limit=10,
                                                                query="Grace.Hopper@example.com")
            assert len(found) == 3 and {o.status for o in found} == {"paid"}
            assert json.loads(found[0].customer)["name"] == "Grace Hopper"

            statuses = [o.status for o in week]
            assert statuses.count("paid") > 25
            assert statuses.count("refunded") == 2 and statuses.count("partially_refunded") == 1
            assert statuses.count("canceled") == 1 and statuses.count("open") == 4  # 3 declined, 1 dropped off
            payments = await _all(payments_service.list_payments, rt, merchant_id, None)
            failed = [p for p in payments if p.status == "failed"]
            assert {p.failure_code for p in failed} == {"card_declined", "insufficient_funds", "expired_card",
                                                        "incorrect_cvc"}
            # Declined and then paid on the same order; declined and left open.
            by_order = {o.id: o for o in week}
            assert any(by_order[p.order_id].status == "paid" for p in failed)
            assert any(by_order[p.order_id].status == "open" for p in failed)
            # Drop-offs recovered: the session's recovery link paid the order; one link still waits.
            recovery = [link for link in await _all(links.list_links, rt, merchant_id, None) if link.source == "recovery"]
            paid_by_link = {p.payment_link_id for p in payments if p.status == "succeeded" and p.payment_link_id}
            recovered = [link for link in recovery if link.id in paid_by_link]
            assert len(recovered) == 3 and all(by_order[link.order_id].status == "paid" for link in recovered)
            assert [by_order[link.order_id].status for link in recovery if link not in recovered] == ["open"]
            assert any(p.channel == "payment_link" and p.payment_link_id not in {r.id for r in recovery}
                       and p.status == "succeeded" for p in payments)  # the phone order's link

            # The warehouse endpoint hears the week and fails: each delivery's attempt is refused, and
            # it waits for its retry.
            endpoints, _ = await webhooks.list_endpoints(rt, merchant_id, 100, None)
            [failing] = [e for e in endpoints if e.description == FAILING_WEBHOOK_DESCRIPTION]
            assert failing.url == f"{shop_url}{FAILING_WEBHOOK_PATH}" and failing.status == "enabled"
            assert await deliver_due(rt, budget=20)
            deliveries = await _all(webhooks.list_deliveries, rt, merchant_id, failing.id)
            assert len(deliveries) >= 35 and {d.event_type for d in deliveries} == {
                "order.paid", "order.refunded", "order.canceled"}
            assert {(d.status, d.attempts, d.last_status_code) for d in deliveries} == {("pending", 1, 404)}
            attempts = await webhooks.list_attempts(rt, merchant_id, deliveries[0].id)
            assert [a.status_code for a in attempts] == [404]
            assert receiver.at("/shop/webhooks")  # the shop's own endpoint is fine

            # The partner app is installed on the demo merchant, with an update waiting for approval:
            # the demo's checkouts ask nothing of it until the merchant approves.
            installation = await oauth.active_installation(rt, first.partner_app.app_id, merchant_id)
            assert installation is not None and installation.id == first.installation_id
            assert sorted(installation.consent.scopes) == sorted(DEMO_APP_SCOPES) and not installation.consent.hooks
            assert first.app_update_pending and installation.pending is not None
            assert installation.pending[0].hooks == ("checkout.before_payment",)
            assert [f["key"] for f in installation.pending[0].checkout_fields] == ["age_confirmed"]
        finally:
            await rt.stop()

        # A second run adds no week: only this run's open checkout.
        second = await seed(config, shop_origins("127.0.0.1", 8001), shop_url, "http://127.0.0.1:8002")
        assert second.merchant_id == first.merchant_id and second.installation_id == first.installation_id
        rt = await Runtime.start(config)
        try:
            again = await _all(orders_service.list_orders, rt, merchant_id)
            assert len(again) == len(orders) + 1
            endpoints, _ = await webhooks.list_endpoints(rt, merchant_id, 100, None)
            assert len(endpoints) == 2
            installations, _ = await oauth.list_installations(rt, merchant_id, 100, None)
            assert [i.id for i in installations] == [first.installation_id]
        finally:
            await rt.stop()
    finally:
        receiver.stop()


def test_the_banner_names_the_console_and_its_login():
    config = Config(database_url="sqlite:///unused.sqlite3", secret_keys=(TEST_SECRET,), env="development",
                    public_url="http://127.0.0.1:8000")
    seeded = Seeded("mer_1", "sk_test_1", "cs_1", "token", (), installation_id="inst_1", app_update_pending=True,
                    webhook_endpoint_id="we_1")
    printed = _banner(config, seeded, "http://127.0.0.1:8001", "http://127.0.0.1:8002", Path("var/flint-demo.log"))
    assert re.search(rf"Console:\s+http://127\.0\.0\.1:8000/dashboard\n\s+sign in as {re.escape(DEMO_EMAIL)} / "
                     rf"{re.escape(DEMO_PASSWORD)}", printed), printed
    assert max(len(line) for line in printed.splitlines() if "Bearer" not in line and "we_1" not in line) <= 110
