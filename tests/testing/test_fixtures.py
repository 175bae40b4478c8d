"""The QA kit's fixtures in this suite (the plugin is loaded here too, from the entry point): ``flint_server``'s
merchant and helpers, and ``flint_webhooks`` verifying, refusing and scoping deliveries to one test."""
from __future__ import annotations

import json
import re
import time
from datetime import UTC, datetime

import httpx
import pytest
from standardwebhooks import Webhook

from flint.testing.server import FlintError
from flint.testing.webhooks import Webhooks

LINE_ITEMS = [{"name": "Beans", "quantity": 1, "unit_amount": 900}]


def new_session(flint_server) -> dict:
    with flint_server.client() as api:
        created = api.post("/v1/checkout/sessions", json={"order": {"currency": "usd", "line_items": LINE_ITEMS},
                                                          "mode": "embedded", "success_url": "https://shop.example/ok"})
    assert created.status_code == 200, created.text
    return created.json()


def test_the_merchant_signs_in_with_the_email_and_password_of_the_run(flint_server):
    assert flint_server.merchant.email == flint_server.merchant["email"] == "qa@example.com"
    with httpx.Client(base_url=flint_server.url) as browser:
        form = browser.get("/login")
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', form.text).group(1)
        signed_in = browser.post("/login", data={"csrf_token": csrf, "email": flint_server.merchant["email"],
                                                 "password": flint_server.merchant["password"]})
    assert signed_in.status_code == 303 and signed_in.headers["location"] == "/dashboard"


def test_allow_origin_adds_one_and_keeps_the_others(flint_server):
    flint_server.allow_origin("http://localhost:5001")
    assert flint_server.allow_origin("http://localhost:5002")[-2:] == ["http://localhost:5001", "http://localhost:5002"]
    assert flint_server.allow_origin("http://localhost:5001").count("http://localhost:5001") == 1


def test_advance_clock_moves_the_servers_clock_forward_only(flint_server):
    first = flint_server.advance_clock(1)
    second = flint_server.advance_clock(2)
    assert second["offset_seconds"] == first["offset_seconds"] + 2
    with pytest.raises(FlintError, match="400"):
        flint_server.advance_clock(-1)
    assert flint_server.advance_clock(0)["offset_seconds"] == second["offset_seconds"]


def test_wait_for_returns_each_verified_event_of_this_test_once(flint_server, flint_webhooks, _flint_webhook_receiver):
    session = new_session(flint_server)
    event = flint_webhooks.wait_for("checkout.session.created", order_id=session["order_id"])
    assert event["data"]["object"]["id"] == session["id"]
    flint_webhooks.wait_for("order.created", order_id=session["order_id"])  # both arrived before `later`
    with pytest.raises(AssertionError, match="checkout.session.created"):  # returned once
        flint_webhooks.wait_for("checkout.session.created", timeout=0.3, order_id=session["order_id"])
    # What a later test sees: nothing that arrived before it began.
    later = Webhooks(_flint_webhook_receiver)
    with pytest.raises(AssertionError):
        later.wait_for("checkout.session.created", timeout=0.3)
    other = new_session(flint_server)
    assert later.wait_for("order.created")["order_id"] == other["order_id"]


def test_a_delivery_that_does_not_verify_is_refused_and_recorded(flint_webhooks):
    body = json.dumps({"id": "evt_forged", "type": "order.paid", "order_id": "ord_x"})
    now = datetime.now(UTC)
    signed = Webhook(flint_webhooks.secret).sign("evt_forged", now, body)
    headers = {"webhook-id": "evt_forged", "webhook-timestamp": str(int(now.timestamp())), "content-type": "application/json"}
    forged = httpx.post(flint_webhooks.url, content=body, headers={**headers, "webhook-signature": "v1,AAAA"})
    stale = httpx.post(flint_webhooks.url, content=body, headers={
        **headers, "webhook-timestamp": str(int(now.timestamp()) - 3600), "webhook-signature": signed})
    assert forged.status_code == stale.status_code == 400
    assert [d.body for d in flint_webhooks.rejected] == [body.encode()] * 2
    with pytest.raises(AssertionError, match="400"):
        flint_webhooks.wait_for("order.paid", timeout=0.2)
    # Signed with the endpoint's secret, the same body is accepted: the receiver verifies, it does not refuse all.
    assert httpx.post(flint_webhooks.url, content=body, headers={**headers, "webhook-signature": signed}).status_code == 200
    assert flint_webhooks.wait_for("order.paid", timeout=1)["id"] == "evt_forged"


def test_a_delivery_failed_on_purpose_is_retried_and_accepted_once(flint_server, flint_webhooks):
    flint_webhooks.fail_next(2)  # a session's two events: order.created, checkout.session.created
    session = new_session(flint_server)
    deadline = time.monotonic() + 10
    while len(flint_webhooks.deliveries) < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert [d.status for d in flint_webhooks.deliveries] == [500, 500]
    flint_server.advance_clock(10)  # past the first retry (5 s): sent again before the answer
    created = flint_webhooks.wait_for("checkout.session.created", timeout=5, order_id=session["order_id"])
    tries = [d.status for d in flint_webhooks.deliveries if d.headers.get("webhook-id") == created["id"]]
    assert tries[:2] == [500, 200]
    assert [e["type"] for e in flint_webhooks.events].count("checkout.session.created") == 1
