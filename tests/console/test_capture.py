"""Capture and Void on an authorized order's page over real HTTP (docs/api.md 15 and 17): through the same
services as the API's POST /v1/payments/{id}/capture and /void, as the staff member, with the form's
single-use token. However often a form is sent (a double click, the back button and the same form again)
money moves once; a partial capture releases the rest; Void asks first (a confirm step without JavaScript).
Refused without the token, for a role without the permission, and across merchants (404): nothing changes."""
from __future__ import annotations

import asyncio
import dataclasses
import html
import re

import httpx
import pytest

from flint.actors import Actor
from flint.checkout import service as checkout
from flint.console import service
from flint.errors import FlintError
from flint.staff.models import allows
from support.factories import make_order, new_order, pay_session

from .test_order_actions import _api, _events, _sign_in, _team, buttons, form_token


async def _authorized_order(rt, merchant_id: str, amount: int = 2500, currency: str = "usd") -> tuple[str, str]:
    """An order whose manual-capture checkout the buyer paid: (order id, the authorized payment's id)."""
    new = checkout.NewSession(mode="embedded", success_url="https://shop.example/thanks", order_id=None,
                              inline_order=new_order(amount, currency), expires_in=3600, capture="manual")
    session = await checkout.create_session(rt, merchant_id, new, Actor("merchant", merchant_id))
    payment = await pay_session(rt, session)
    assert payment.status == "authorized"
    return session.order_id, payment.id


@pytest.fixture
async def desk(server, server_rt):
    """A support member signed in (support may capture and void): (merchant, api key, member, browser)."""
    merchant, key, member = await _team(server_rt, "support")
    async with httpx.AsyncClient(base_url=server.url, follow_redirects=False, timeout=30) as browser:
        await _sign_in(browser, member.email)
        yield merchant, key, member, browser


def _said(page: str) -> str:
    return html.unescape(re.sub(r"\s+", " ", page))


async def _state(server, key: str, order_id: str, payment_id: str) -> tuple:
    order = await _api(server, key, f"/v1/orders/{order_id}")
    payment = await _api(server, key, f"/v1/payments/{payment_id}")
    return order["status"], order["amount_paid"], payment["status"], payment["amount_captured"]


def test_support_may_capture_and_void_as_it_may_refund():
    # docs/api.md 15: the people who refund an order may take or release its authorization.
    for role in ("owner", "developer", "support"):
        assert allows(role, "payments:capture") and allows(role, "payments:void")
        assert allows(role, "refunds:write")


async def test_an_authorized_order_offers_capture_of_all_of_it_and_void(desk, server_rt):
    merchant, _, _, browser = desk
    order_id, _ = await _authorized_order(server_rt, merchant.id, 4200, "eur")
    page = (await browser.get(f"/dashboard/orders/{order_id}")).text
    assert buttons(page) == ["Sign out", "Capture", "Void"]  # no refund, no link, no cancel while it stands
    assert re.search(r'<span class="status status-authorized">Authorized</span>', page)
    assert re.search(r'<label for="capture-amount">Amount</label>\s*<input id="capture-amount" name="amount"', page)
    said = _said(page)
    assert 'value="42.00"' in page and "at most €42.00, what was authorized" in said
    assert "<dt>Authorized</dt><dd>€42.00</dd>" in said
    # Void asks first: with JavaScript a dialog (data-confirm), without it a confirm step.
    void = re.search(rf'<form method="get" action="/dashboard/orders/{order_id}/void"[^>]*>', page).group(0)
    assert "data-confirm=" in void and f'data-confirmed-action="/dashboard/orders/{order_id}/void"' in void
    assert "Payment authorized" in said  # the timeline


async def test_capture_once_however_often_the_form_is_sent(desk, server, server_rt):
    merchant, key, member, browser = desk
    order_id, payment_id = await _authorized_order(server_rt, merchant.id, 4200, "eur")
    action = f"/dashboard/orders/{order_id}/capture"
    token = form_token((await browser.get(f"/dashboard/orders/{order_id}")).text, action)
    form = {"csrf_token": token, "amount": "42.00"}
    # A double click: both at once; the second waits for the first and answers with its outcome.
    first, second = await asyncio.gather(browser.post(action, data=form), browser.post(action, data=form))
    assert first.status_code == second.status_code == 303
    assert first.headers["location"] == second.headers["location"] == f"/dashboard/orders/{order_id}?captured={payment_id}"
    # Later, the back button and the same form again: the first outcome, and nothing more.
    again = await browser.post(action, data=form)
    assert again.status_code == 303 and again.headers["location"] == first.headers["location"]
    assert await _state(server, key, order_id, payment_id) == ("paid", 4200, "succeeded", 4200)
    assert await _events(server_rt, order_id, "payment.captured") == [{"actor_type": "staff", "actor_id": member.id}]
    assert len(await _events(server_rt, order_id, "order.paid")) == 1
    page = (await browser.get(first.headers["location"])).text
    said = _said(page)
    assert "Captured €42.00." in said and "Payment captured" in said
    assert buttons(page) == ["Sign out", "Refund"]  # now a paid order
    # A fresh form for an order whose authorization is gone: refused, nothing more.
    stale = form_token((await browser.get(f"/dashboard/orders/{order_id}")).text, f"/dashboard/orders/{order_id}/refund")
    late = await browser.post(action, data={"csrf_token": stale, "amount": "1.00"})
    assert late.status_code == 409 and "no authorization to capture" in late.text
    assert await _state(server, key, order_id, payment_id) == ("paid", 4200, "succeeded", 4200)


async def test_a_partial_capture_releases_the_rest(desk, server, server_rt):
    merchant, key, _, browser = desk
    order_id, payment_id = await _authorized_order(server_rt, merchant.id, 2500, "usd")
    action = f"/dashboard/orders/{order_id}/capture"
    page = (await browser.get(f"/dashboard/orders/{order_id}")).text
    # More than was authorized: refused, what was typed kept, nothing moved.
    too_much = await browser.post(action, data={"csrf_token": form_token(page, action), "amount": "25.01"})
    assert too_much.status_code == 400 and 'value="25.01"' in too_much.text and 'aria-invalid="true"' in too_much.text
    assert await _state(server, key, order_id, payment_id) == ("authorized", 0, "authorized", 0)
    for typed in ("abc", "0"):
        refused = await browser.post(action, data={"csrf_token": form_token(too_much.text, action), "amount": typed})
        assert refused.status_code == 400
    done = await browser.post(action, data={"csrf_token": form_token(too_much.text, action), "amount": "10"})
    assert done.status_code == 303
    assert await _state(server, key, order_id, payment_id) == ("paid", 1000, "succeeded", 1000)
    payment = await _api(server, key, f"/v1/payments/{payment_id}")
    assert (payment["amount"], payment["amount_authorized"], payment["amount_capturable"]) == (1000, 2500, 0)
    said = _said((await browser.get(done.headers["location"])).text)
    assert "Captured $10.00; the rest of the $25.00 authorized was released." in said
    assert "$10.00 by Visa •••• 4242 (of $25.00 authorized; the rest released)" in said  # the timeline


async def test_void_asks_first_then_releases_once(desk, server, server_rt):
    merchant, key, member, browser = desk
    order_id, payment_id = await _authorized_order(server_rt, merchant.id, 1999, "usd")
    confirm = await browser.get(f"/dashboard/orders/{order_id}/void")
    assert confirm.status_code == 200 and "Void this authorization?" in confirm.text
    assert "Keep the authorization" in confirm.text
    assert await _state(server, key, order_id, payment_id) == ("authorized", 0, "authorized", 0)  # asking: nothing
    action = f"/dashboard/orders/{order_id}/void"
    form = {"csrf_token": form_token(confirm.text, action)}
    first, second = await asyncio.gather(browser.post(action, data=form), browser.post(action, data=form))
    assert first.status_code == second.status_code == 303
    assert first.headers["location"] == second.headers["location"] == f"/dashboard/orders/{order_id}?voided={payment_id}"
    again = await browser.post(action, data=form)  # the back button, the same form
    assert again.headers["location"] == first.headers["location"]
    assert await _state(server, key, order_id, payment_id) == ("open", 0, "canceled", 0)
    assert await _events(server_rt, order_id, "payment.voided") == [{"actor_type": "staff", "actor_id": member.id}]
    page = (await browser.get(first.headers["location"])).text
    said = _said(page)
    assert "The authorization was voided: the buyer's $19.99 was released and the order is open again." in said
    assert "Authorization voided" in said  # the timeline
    assert buttons(page) == ["Sign out", "Create payment link", "Cancel order"]  # open again


# -- refusals ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["capture", "void"])
async def test_refused_without_a_valid_form_token_changing_nothing(desk, server, server_rt, kind):
    merchant, key, _, browser = desk
    order_id, payment_id = await _authorized_order(server_rt, merchant.id)
    action = f"/dashboard/orders/{order_id}/{kind}"
    page = (await browser.get(f"/dashboard/orders/{order_id}" + ("/void" if kind == "void" else ""))).text
    genuine = form_token(page, action)
    sign_out = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)  # another kind of token
    for token in (None, "", genuine[:-4] + "AAAA", sign_out):
        data = {"amount": "1.00", **({"csrf_token": token} if token is not None else {})}
        answer = await browser.post(action, data=data)
        assert answer.status_code == 403, (token, answer.status_code)
        assert "Nothing was done" in answer.text
    assert await _state(server, key, order_id, payment_id) == ("authorized", 0, "authorized", 0)
    # The genuine token still works afterwards: refusals spent nothing.
    assert (await browser.post(action, data={"csrf_token": genuine, "amount": "1.00"})).status_code == 303


@pytest.mark.parametrize("kind", ["capture", "void"])
async def test_refused_for_a_role_without_the_permission_changing_nothing(desk, server, server_rt, kind):
    merchant, key, member, browser = desk
    order_id, payment_id = await _authorized_order(server_rt, merchant.id)
    action = f"/dashboard/orders/{order_id}/{kind}"
    page = (await browser.get(f"/dashboard/orders/{order_id}" + ("/void" if kind == "void" else ""))).text
    token = form_token(page, action)
    # The member's role changes (to one that allows none of this) after the page was shown.
    async with server_rt.db.transaction() as conn:
        await conn.execute("UPDATE staff SET role = 'viewer' WHERE id = :id", {"id": member.id})
    answer = await browser.post(action, data={"csrf_token": token, "amount": "1.00"})
    assert answer.status_code == 403 and "You do not have access" in answer.text
    assert await _state(server, key, order_id, payment_id) == ("authorized", 0, "authorized", 0)


@pytest.mark.parametrize("kind", ["capture", "void"])
async def test_another_merchants_order_is_404_and_unchanged(desk, server, server_rt, kind):
    merchant, _, _, browser = desk
    theirs, their_key, _ = await _team(server_rt, "owner")
    order_id, payment_id = await _authorized_order(server_rt, theirs.id)
    own = await make_order(server_rt, merchant.id)
    token = form_token((await browser.get(f"/dashboard/orders/{own.id}/cancel")).text,
                       f"/dashboard/orders/{own.id}/cancel")
    answer = await browser.post(f"/dashboard/orders/{order_id}/{kind}", data={"csrf_token": token, "amount": "1.00"})
    assert answer.status_code == 404 and "Order not found" in answer.text and order_id not in answer.text
    assert await _state(server, their_key, order_id, payment_id) == ("authorized", 0, "authorized", 0)
    assert (await browser.get(f"/dashboard/orders/{order_id}/void")).status_code == 404
    assert await _events(server_rt, order_id, "payment.captured") == []
    assert await _events(server_rt, order_id, "payment.voided") == []


async def test_the_service_refuses_a_role_whatever_the_page_shows(rt):
    merchant, _, member = await _team(rt, "support")
    order_id, _ = await _authorized_order(rt, merchant.id)
    nobody = service.Viewer("ws_x", merchant, dataclasses.replace(member, role="viewer"))
    token = service.form_token(rt, nobody)
    for act in (service.capture(rt, nobody, order_id, token, "1.00"), service.void(rt, nobody, order_id, token)):
        with pytest.raises(FlintError) as refused:
            await act
        assert refused.value.status == 403 and refused.value.code == "role_forbidden"
    order = await service.orders.get_order(rt, merchant.id, order_id)
    actions = service.order_actions(nobody, order)
    assert not actions.capture and not actions.void


def test_the_timeline_tells_a_void_from_an_expiry():
    payment = {"id": "pay_1", "amount": 2500, "amount_authorized": 2500, "currency": "usd", "channel": "hosted",
               "card": {"brand": "visa", "last4": "4242"}}
    voided = service.describe(7, "payment.voided", "2026-01-02T03:04:05.000000Z", "staff", "stf_1", payment)
    assert (voided.title, voided.actor) == ("Authorization voided", "staff stf_1")
    assert "$25.00 released on Visa •••• 4242 via hosted" in voided.details
    # The sweeper's expiry, or a processor that let it lapse (answered when someone tried to capture).
    for actor, failure in (("system", "authorization_expired"), ("staff", "authorization_expired")):
        expired = service.describe(8, "payment.voided", "2026-01-09T03:04:05.000000Z", actor, None,
                                   {**payment, "failure_code": failure})
        assert expired.title == "Authorization expired"
