"""The checkout.before_payment hook with a real hook server on loopback: block, annotate, route to
hosted, slow, malformed and failing answers, an answer that tries to change the amount, both failure
modes, several apps, and the call log the merchant reads."""
from __future__ import annotations

import json
import re
import secrets

import httpx
import pytest
from standardwebhooks import Webhook

from flint.apps import service as apps
from flint.merchants import service as merchants
from support.receiver import Receiver

from support.oauth import PASSWORD, install

CARD = {"number": "4242 4242 4242 4242", "exp_month": 12, "exp_year": 2034, "cvc": "123"}
ORDER = {"currency": "usd", "line_items": [{"name": "Beans", "quantity": 1, "unit_amount": 2400}]}


@pytest.fixture(scope="module")
def hook_server():
    live = Receiver().start()
    yield live
    live.stop()


@pytest.fixture
async def browser(server):
    async with httpx.AsyncClient(base_url=server.url, follow_redirects=False, timeout=30) as client:
        yield client


async def hooked_shop(server, server_rt, browser, hook_server, answers: list[tuple[bytes, float, int]],
                      failure_modes: list[str] | None = None):
    """A shop with one installed app per answer (body, delay, status), each with its own hook path.
    Returns (merchant, key, [(app, path, webhook_secret)])."""
    shop, key = await merchants.create_merchant(server_rt, name="Hooked", email=f"h{secrets.token_hex(4)}@shop.example",
                                                password=PASSWORD)
    dev, _ = await merchants.create_merchant(server_rt, name="Dev", email=f"d{secrets.token_hex(4)}@dev.example",
                                             password=PASSWORD)
    installed = []
    for i, (body, delay, status) in enumerate(answers):
        path = f"/hook-{secrets.token_hex(4)}"
        hook_server.script(path, [status], delay=delay, body=body)
        app, client_secret, webhook_secret = await apps.create_app(
            server_rt, dev.id, name=f"Hook {i}", redirect_uris=["http://127.0.0.1:9/callback"],
            scopes=["orders:read", "payments:read"], hook_url=hook_server.url(path), hooks=["checkout.before_payment"],
            hook_failure_mode=(failure_modes or ["allow"] * len(answers))[i])
        await install(server, browser, app, client_secret, shop.email)
        installed.append((app, path, webhook_secret))
    return shop, key, installed


async def session_of(server, key, mode="embedded"):
    async with server.async_client(key) as owner:
        made = await owner.post("/v1/checkout/sessions", json={"order": ORDER, "mode": mode,
                                                               "success_url": "https://shop.example/thanks"})
        return made.json()


async def confirm(server, session):
    async with server.async_client(session["client_token"]) as buyer:
        return await buyer.post(f"/v1/checkout/sessions/{session['id']}/confirm", json={"card": CARD})


async def payments_of(server, key, order_id):
    async with server.async_client(key) as owner:
        return (await owner.get("/v1/payments", params={"order": order_id})).json()["data"]


async def calls_of(server, key, order_id):
    async with server.async_client(key) as owner:
        return (await owner.get("/v1/hook_calls", params={"order": order_id})).json()["data"]


def answer(*actions, **extra) -> bytes:
    return json.dumps({"actions": list(actions), **extra}).encode()


async def test_a_block_refuses_the_attempt_with_the_apps_message_and_no_payment(server, server_rt, browser, hook_server):
    shop, key, [(app, path, secret)] = await hooked_shop(server, server_rt, browser, hook_server, [
        (answer({"type": "block", "message": "Orders over $20 need a phone call <b>first</b>."}), 0, 200)])
    session = await session_of(server, key)
    refused = await confirm(server, session)
    assert refused.status_code == 402 and refused.json()["code"] == "blocked_by_extension"
    assert refused.json()["detail"] == "Orders over $20 need a phone call <b>first</b>."  # plain text, as sent
    assert await payments_of(server, key, session["order_id"]) == []
    # What the app was sent: signed with its webhook secret, the order and the channel, nothing more.
    sent = hook_server.at(path)[-1]
    body = Webhook(secret).verify(sent.body, sent.headers)
    assert body["type"] == "checkout.before_payment" and body["order"]["id"] == session["order_id"]
    assert body["checkout"] == {"channel": "embedded", "session_id": session["id"], "payment_link_id": None}
    assert body["installation_id"].startswith("inst_")
    [call] = await calls_of(server, key, session["order_id"])
    assert (call["app_id"], call["outcome"], call["applied"]) == (app.id, "answered", ["block"])
    # The hosted page shows the same message, escaped, and takes no payment either.
    hosted = await session_of(server, key, mode="hosted")
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as buyer:
        page = await buyer.get(f"/checkout/{hosted['id']}")
        token = re.search(r'name="form_token" value="([^"]+)"', page.text).group(1)
        posted = await buyer.post(f"/checkout/{hosted['id']}", data={
            "form_token": token, "card_number": CARD["number"], "expiry": "12 / 34", "cvc": "123"})
    assert posted.status_code == 402
    assert "Orders over $20 need a phone call &lt;b&gt;first&lt;/b&gt;." in posted.text, re.findall(r"id=.form-error.>[^<]*", posted.text)
    assert await payments_of(server, key, hosted["order_id"]) == []


async def test_annotate_is_stored_under_the_app_and_the_payment_goes_on(server, server_rt, browser, hook_server):
    shop, key, [(app, _, _)] = await hooked_shop(server, server_rt, browser, hook_server, [
        (answer({"type": "annotate", "data": {"risk": 12, "checked": True}},
                {"type": "set_amount", "amount": 1}, amount=1, currency="jpy"), 0, 200)])
    session = await session_of(server, key)
    paid = await confirm(server, session)
    assert paid.status_code == 200 and paid.json()["status"] == "succeeded"
    assert paid.json()["amount"] == 2400 and paid.json()["currency"] == "usd"  # the amount change was ignored
    async with server.async_client(key) as owner:
        order = (await owner.get(f"/v1/orders/{session['order_id']}")).json()
    assert order["extension_data"] == {app.id: {"risk": 12, "checked": True}} and order["amount_paid"] == 2400
    [call] = await calls_of(server, key, session["order_id"])
    assert call["applied"] == ["annotate"]
    assert {"type": "set_amount", "amount": 1} in call["ignored"] and {"amount": 1} in call["ignored"]


async def test_route_to_hosted_sends_an_embedded_buyer_to_the_hosted_page_only(server, server_rt, browser, hook_server):
    shop, key, _ = await hooked_shop(server, server_rt, browser, hook_server, [
        (answer({"type": "route_to_hosted", "reason": "needs address check"}), 0, 200)])
    embedded = await session_of(server, key)
    routed = await confirm(server, embedded)
    assert routed.status_code == 409 and routed.json()["code"] == "route_to_hosted"
    assert await payments_of(server, key, embedded["order_id"]) == []
    hosted = await session_of(server, key, mode="hosted")
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as buyer:  # the hosted page itself pays
        page = await buyer.get(f"/checkout/{hosted['id']}")
        token = re.search(r'name="form_token" value="([^"]+)"', page.text).group(1)
        paid = await buyer.post(f"/checkout/{hosted['id']}", data={
            "form_token": token, "card_number": CARD["number"], "expiry": "12 / 34", "cvc": "123"})
    assert paid.status_code == 303


@pytest.mark.parametrize("body, delay, status, outcome", [
    (answer({"type": "block", "message": "no"}), 3.0, 200, "timeout"),  # a 3 s answer is too late
    (b"{not json", 0, 200, "invalid"),
    (answer({"type": "block", "message": "x" * 201}), 0, 200, "invalid"),
    (b'{"actions": "block"}', 0, 200, "invalid"),
    (answer({"type": "block", "message": "no"}), 0, 500, "error"),
])
@pytest.mark.parametrize("mode", ["allow", "block"])
async def test_a_failing_hook_follows_the_apps_failure_mode(server, server_rt, browser, hook_server, body, delay,
                                                           status, outcome, mode):
    shop, key, [(app, _, _)] = await hooked_shop(server, server_rt, browser, hook_server, [(body, delay, status)],
                                                 failure_modes=[mode])
    session = await session_of(server, key)
    result = await confirm(server, session)
    [call] = await calls_of(server, key, session["order_id"])
    assert call["outcome"] == outcome
    assert call["latency_ms"] < 2600  # never waited past the 2 s limit
    if mode == "allow":
        assert result.status_code == 200 and result.json()["status"] == "succeeded"
        assert call["applied"] == []
    else:
        assert result.status_code == 402 and result.json()["code"] == "blocked_by_extension"
        assert result.json()["detail"] == "This payment cannot be completed right now."
        assert call["applied"] == ["block (failure mode)"]
        assert await payments_of(server, key, session["order_id"]) == []


async def test_several_apps_combine_in_install_order(server, server_rt, browser, hook_server):
    shop, key, installed = await hooked_shop(server, server_rt, browser, hook_server, [
        (answer({"type": "annotate", "data": {"a": 1}}), 0, 200),
        (answer({"type": "block", "message": "first block"}, {"type": "annotate", "data": {"b": 2}}), 0, 200),
        (answer({"type": "block", "message": "second block"}), 0, 200),
    ])
    session = await session_of(server, key)
    refused = await confirm(server, session)
    assert refused.json()["detail"] == "first block"
    async with server.async_client(key) as owner:
        order = (await owner.get(f"/v1/orders/{session['order_id']}")).json()
    assert order["extension_data"] == {installed[0][0].id: {"a": 1}, installed[1][0].id: {"b": 2}}
    calls = await calls_of(server, key, session["order_id"])
    assert sorted(c["app_id"] for c in calls) == sorted(app.id for app, _, _ in installed)
    assert {c["app_id"]: c["applied"] for c in calls}[installed[2][0].id] == []  # its block came second


async def test_an_uninstalled_app_is_no_longer_asked(server, server_rt, browser, hook_server):
    shop, key, [(app, path, _)] = await hooked_shop(server, server_rt, browser, hook_server, [
        (answer({"type": "block", "message": "no"}), 0, 200)])
    async with server.async_client(key) as owner:
        [installation] = (await owner.get("/v1/installations")).json()["data"]
        await owner.delete(f"/v1/installations/{installation['id']}")
    asked = len(hook_server.at(path))
    session = await session_of(server, key)
    assert (await confirm(server, session)).status_code == 200
    assert len(hook_server.at(path)) == asked
