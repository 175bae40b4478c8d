"""The order page's actions over real HTTP (docs/api.md 15): Refund, Cancel order and Create payment link, each
through the same service as the API with the staff member as the actor, shown only when the role and the
order's state allow them. Each is refused without its form token (403, nothing changed), for a role that
lacks it (403, nothing changed) and across merchants (404, nothing changed); the same form sent twice, at
once or later (the back button), acts once."""
from __future__ import annotations

import asyncio
import dataclasses
import html
import itertools
import json
import re

import httpx
import pytest

from flint.console import service
from flint.errors import FlintError
from flint.forms import service as forms
from flint.idempotency import service as idempotency
from flint.merchants import service as merchants
from flint.refunds.models import REASONS
from flint.staff import service as staff
from support.factories import make_order, make_session, pay_session

PASSWORD = "a long and correct password"
_counter = itertools.count(1)


async def _team(rt, role: str):
    """A merchant with its secret API key and a member with ``role`` who accepted their invitation."""
    n = next(_counter)
    merchant, key = await merchants.create_merchant(rt, name=f"Action Shop {n}",
                                                    email=f"act{n}-{id(rt)}@shop.example", password=PASSWORD)
    async with rt.db.transaction() as conn:
        owner = await staff.ensure_owner(conn, merchant)
    if role == "owner":
        return merchant, key, owner
    _, token = await staff.invite(rt, owner, f"{role}{n}-{id(rt)}@shop.example", role)
    return merchant, key, await staff.accept_invitation(rt, token, PASSWORD)


async def _sign_in(client: httpx.AsyncClient, email: str) -> None:
    page = await client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    done = await client.post("/login", data={"csrf_token": token, "email": email, "password": PASSWORD})
    assert done.status_code == 303


@pytest.fixture
async def desk(server, server_rt):
    """A support member signed in: (merchant, api key, member, browser)."""
    merchant, key, member = await _team(server_rt, "support")
    async with httpx.AsyncClient(base_url=server.url, follow_redirects=False, timeout=30) as browser:
        await _sign_in(browser, member.email)
        yield merchant, key, member, browser


async def _paid_order(rt, merchant_id: str, amount: int = 2500, currency: str = "usd") -> str:
    session = await make_session(rt, merchant_id, amount=amount, currency=currency)
    payment = await pay_session(rt, session)
    assert payment.status == "succeeded"
    return session.order_id


def form_token(page: str, action: str) -> str:
    """The single-use token of the form posting to ``action``."""
    form = re.search(rf'<form method="post" action="{re.escape(action)}"[^>]*>\s*<input type="hidden" '
                     rf'name="csrf_token" value="([^"]+)"', page)
    assert form, f"no form posting to {action}"
    return form.group(1)


def buttons(page: str) -> list[str]:
    return re.findall(r'<button type="submit"[^>]*>([^<]+)</button>', page)


async def _api(server, key: str, path: str) -> dict:
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as api:
        answer = await api.get(path, headers={"Authorization": f"Bearer {key}"})
    assert answer.status_code == 200, answer.text
    return answer.json()


async def _events(rt, order_id: str, kind: str) -> list[dict]:
    async with rt.db.read() as conn:
        rows = await conn.fetch_all("SELECT actor_type, actor_id FROM events WHERE order_id = :o AND type = :t",
                                    {"o": order_id, "t": kind})
    return [dict(row) for row in rows]


async def _count(rt, table: str, order_id: str) -> int:
    async with rt.db.read() as conn:
        row = await conn.fetch_one(f"SELECT COUNT(*) AS n FROM {table} WHERE order_id = :o", {"o": order_id})
    return row["n"]


# -- what is offered --------------------------------------------------------------------------------------

async def test_the_actions_follow_the_orders_state(desk, server_rt):
    merchant, _, _, browser = desk
    open_order = await make_order(server_rt, merchant.id)
    page = (await browser.get(f"/dashboard/orders/{open_order.id}")).text
    assert buttons(page) == ["Sign out", "Create payment link", "Cancel order"]
    assert f'<form method="get" action="/dashboard/orders/{open_order.id}/cancel"' in page  # a confirm step first
    paid = await _paid_order(server_rt, merchant.id, 4200, "eur")
    page = (await browser.get(f"/dashboard/orders/{paid}")).text
    assert buttons(page) == ["Sign out", "Refund"]
    # The refund form: Amount (all that is refundable, in major units) and Reason (what the API accepts).
    assert re.search(r'<label for="refund-amount">Amount</label>\s*<input id="refund-amount" name="amount"', page)
    assert 'value="42.00"' in page and "at most €42.00" in html.unescape(page)
    reason = re.search(r'<label for="refund-reason">Reason</label>\s*<select id="refund-reason" name="reason">(.*?)'
                       r'</select>', page, re.DOTALL).group(1)
    assert re.findall(r'<option value="([^"]*)"', reason) == ["", "requested_by_customer", "duplicate", "fraudulent"]


# -- Refund -----------------------------------------------------------------------------------------------

async def test_support_refunds_part_of_a_paid_order_once_however_often_the_form_is_sent(desk, server, server_rt):
    merchant, key, member, browser = desk
    order_id = await _paid_order(server_rt, merchant.id, 4200, "eur")
    action = f"/dashboard/orders/{order_id}/refund"
    token = form_token((await browser.get(f"/dashboard/orders/{order_id}")).text, action)
    form = {"csrf_token": token, "amount": "10.50", "reason": "requested_by_customer"}
    # A double click: both at once.
    first, second = await asyncio.gather(browser.post(action, data=form), browser.post(action, data=form))
    # The second waits for the first and answers with its outcome: both go to the same place.
    assert first.status_code == second.status_code == 303
    assert first.headers["location"] == second.headers["location"]
    done = first
    assert re.fullmatch(rf"/dashboard/orders/{order_id}\?refund=re_\w+", done.headers["location"])
    # Later, the back button and the same form again: the first outcome, and nothing more.
    again = await browser.post(action, data=form)
    assert again.status_code == 303 and again.headers["location"] == done.headers["location"]
    assert await _count(server_rt, "refunds", order_id) == 1
    order = await _api(server, key, f"/v1/orders/{order_id}")
    assert order["status"] == "partially_refunded" and order["amount_refunded"] == 1050
    refunds = (await _api(server, key, "/v1/refunds"))["data"]
    assert [(r["amount"], r["reason"]) for r in refunds] == [(1050, "requested_by_customer")]
    assert await _events(server_rt, order_id, "refund.succeeded") == [{"actor_type": "staff", "actor_id": member.id}]
    shown = html.unescape((await browser.get(done.headers["location"])).text)
    assert "Refunded €10.50." in shown and "Partially refunded" in shown
    assert 'value="31.50"' in shown  # the next refund offers what is left


async def test_a_refund_refused_for_its_amount_says_why_keeps_the_typing_and_moves_nothing(desk, server_rt):
    merchant, _, _, browser = desk
    order_id = await _paid_order(server_rt, merchant.id, 2500, "usd")
    action = f"/dashboard/orders/{order_id}/refund"
    for amount, status, said in (("25.01", 400, "At most 2500 can still be refunded."),
                                 ("ten", 400, "Enter the amount as a number"),
                                 ("1.005", 400, "USD amounts have at most 2 decimal places."),
                                 ("0", 400, "Enter an amount above zero.")):
        token = form_token((await browser.get(f"/dashboard/orders/{order_id}")).text, action)
        answer = await browser.post(action, data={"csrf_token": token, "amount": amount, "reason": "duplicate"})
        assert answer.status_code == status, (amount, answer.text)
        page = html.unescape(answer.text)
        assert said in page and f'value="{amount}"' in page and 'aria-invalid="true"' in page
        assert re.search(r'<option value="duplicate" selected>', page)
    assert await _count(server_rt, "refunds", order_id) == 0
    # The whole amount, typed with grouping and no decimals, refunds it all.
    token = form_token((await browser.get(f"/dashboard/orders/{order_id}")).text, action)
    answer = await browser.post(action, data={"csrf_token": token, "amount": "25", "reason": ""})
    assert answer.status_code == 303
    page = (await browser.get(answer.headers["location"])).text
    assert "Refunded $25.00." in page and f'action="{action}"' not in page  # nothing left to refund


# -- Cancel order -----------------------------------------------------------------------------------------

async def test_cancel_order_asks_first_then_cancels_once(desk, server, server_rt):
    merchant, key, member, browser = desk
    order = await make_order(server_rt, merchant.id)
    confirm = await browser.get(f"/dashboard/orders/{order.id}/cancel")
    assert confirm.status_code == 200 and "Cancel this order?" in confirm.text
    assert (await _api(server, key, f"/v1/orders/{order.id}"))["status"] == "open"  # asking changes nothing
    action = f"/dashboard/orders/{order.id}/cancel"
    form = {"csrf_token": form_token(confirm.text, action)}
    first = await browser.post(action, data=form)
    assert first.status_code == 303 and first.headers["location"] == f"/dashboard/orders/{order.id}?canceled=1"
    again = await browser.post(action, data=form)
    assert again.status_code == 303 and again.headers["location"] == first.headers["location"]
    assert (await _api(server, key, f"/v1/orders/{order.id}"))["status"] == "canceled"
    assert await _events(server_rt, order.id, "order.canceled") == [{"actor_type": "staff", "actor_id": member.id}]
    page = (await browser.get(first.headers["location"])).text
    assert "The order was canceled." in page and buttons(page) == ["Sign out"]


# -- Create payment link ----------------------------------------------------------------------------------

async def test_create_payment_link_shows_it_to_copy_and_makes_one(desk, server, server_rt):
    merchant, key, member, browser = desk
    order = await make_order(server_rt, merchant.id)
    action = f"/dashboard/orders/{order.id}/payment_links"
    form = {"csrf_token": form_token((await browser.get(f"/dashboard/orders/{order.id}")).text, action)}
    first, second = await asyncio.gather(browser.post(action, data=form), browser.post(action, data=form))
    # The second waits for the first and answers with its outcome: both go to the same place.
    assert first.status_code == second.status_code == 303
    assert first.headers["location"] == second.headers["location"]
    done = first
    again = await browser.post(action, data=form)
    assert again.headers["location"] == done.headers["location"]
    links = (await _api(server, key, f"/v1/payment_links?order={order.id}"))["data"]
    assert len(links) == 1 and links[0]["source"] == "manual"
    assert links[0]["created_by"] == {"type": "staff", "id": member.id}
    assert done.headers["location"] == f"/dashboard/orders/{order.id}?link={links[0]['id']}"
    page = (await browser.get(done.headers["location"])).text
    box = re.search(r'<label for="payment-link">Payment link</label>\s*<input id="payment-link" type="text" readonly '
                    r'value="([^"]+)"', page)
    assert box and box.group(1) == links[0]["url"] == f"{server.url}/pay/{links[0]['id']}"
    assert await _events(server_rt, order.id, "payment_link.created") == [
        {"actor_type": "staff", "actor_id": member.id}]
    # Another order's link named in the address is not shown here.
    other = await make_order(server_rt, merchant.id)
    assert "payment-link" not in (await browser.get(f"/dashboard/orders/{other.id}?link={links[0]['id']}")).text


# -- refusals ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["refund", "cancel", "payment_links"])
async def test_refused_without_a_valid_form_token_changing_nothing(desk, server, server_rt, kind):
    merchant, key, _, browser = desk
    order_id = await _paid_order(server_rt, merchant.id) if kind == "refund" else (
        await make_order(server_rt, merchant.id)).id
    action = f"/dashboard/orders/{order_id}/{kind}"
    fields = {"amount": "1.00", "reason": ""} if kind == "refund" else {}
    page = (await browser.get(f"/dashboard/orders/{order_id}" + ("/cancel" if kind == "cancel" else ""))).text
    genuine = form_token(page, action)
    # Someone else's genuine token (another signed-in session) is no token for this one.
    others_merchant, _, other_member = await _team(server_rt, "support")
    async with httpx.AsyncClient(base_url=server.url, follow_redirects=False, timeout=30) as elsewhere:
        await _sign_in(elsewhere, other_member.email)
        their_order = await make_order(server_rt, others_merchant.id)
        their_page = (await elsewhere.get(f"/dashboard/orders/{their_order.id}/cancel")).text
        foreign = form_token(their_page, f"/dashboard/orders/{their_order.id}/cancel")
        sign_out = re.search(r'name="csrf_token" value="([^"]+)"', their_page).group(1)  # another kind of token
    for token in (None, "", genuine[:-4] + "AAAA", foreign, sign_out):
        data = dict(fields, **({"csrf_token": token} if token is not None else {}))
        answer = await browser.post(action, data=data)
        assert answer.status_code == 403, (token, answer.status_code)
        assert "Nothing was done" in answer.text
    order = await _api(server, key, f"/v1/orders/{order_id}")
    assert order["status"] == ("paid" if kind == "refund" else "open") and order["amount_refunded"] == 0
    assert (await _api(server, key, f"/v1/payment_links?order={order_id}"))["data"] == []
    # The genuine token still works afterwards: refusals spent nothing.
    assert (await browser.post(action, data=dict(fields, csrf_token=genuine))).status_code == 303


@pytest.mark.parametrize("kind", ["refund", "cancel", "payment_links"])
async def test_refused_for_a_role_without_the_permission_changing_nothing(desk, server, server_rt, kind):
    merchant, key, member, browser = desk
    order_id = await _paid_order(server_rt, merchant.id) if kind == "refund" else (
        await make_order(server_rt, merchant.id)).id
    action = f"/dashboard/orders/{order_id}/{kind}"
    page = (await browser.get(f"/dashboard/orders/{order_id}" + ("/cancel" if kind == "cancel" else ""))).text
    token = form_token(page, action)
    # The member's role changes (to one that allows none of this) after the page was shown.
    async with server_rt.db.transaction() as conn:
        await conn.execute("UPDATE staff SET role = 'viewer' WHERE id = :id", {"id": member.id})
    answer = await browser.post(action, data={"csrf_token": token, "amount": "1.00", "reason": ""})
    assert answer.status_code == 403 and "You do not have access" in answer.text
    order = await _api(server, key, f"/v1/orders/{order_id}")
    assert order["status"] == ("paid" if kind == "refund" else "open") and order["amount_refunded"] == 0
    assert (await _api(server, key, f"/v1/payment_links?order={order_id}"))["data"] == []


@pytest.mark.parametrize("kind", ["refund", "cancel", "payment_links"])
async def test_another_merchants_order_is_404_and_unchanged(desk, server, server_rt, kind):
    merchant, _, _, browser = desk
    theirs, their_key, _ = await _team(server_rt, "owner")
    order_id = await _paid_order(server_rt, theirs.id) if kind == "refund" else (
        await make_order(server_rt, theirs.id)).id
    # A genuine token of this person's own page, aimed at the other merchant's order.
    own = await make_order(server_rt, merchant.id)
    token = form_token((await browser.get(f"/dashboard/orders/{own.id}/cancel")).text,
                       f"/dashboard/orders/{own.id}/cancel")
    answer = await browser.post(f"/dashboard/orders/{order_id}/{kind}",
                                data={"csrf_token": token, "amount": "1.00", "reason": ""})
    assert answer.status_code == 404 and "Order not found" in answer.text and order_id not in answer.text
    order = await _api(server, their_key, f"/v1/orders/{order_id}")
    assert order["status"] == ("paid" if kind == "refund" else "open") and order["amount_refunded"] == 0
    assert (await _api(server, their_key, f"/v1/payment_links?order={order_id}"))["data"] == []
    assert (await browser.get(f"/dashboard/orders/{order_id}/cancel")).status_code == 404


async def test_the_service_refuses_a_role_whatever_the_page_shows(rt):
    merchant, _, member = await _team(rt, "support")
    order = await make_order(rt, merchant.id)
    nobody = service.Viewer("ws_x", merchant, dataclasses.replace(member, role="viewer"))
    token = service.form_token(rt, nobody)
    for act in (service.cancel(rt, nobody, order.id, token), service.create_link(rt, nobody, order.id, token),
                service.refund(rt, nobody, order.id, token, "1", "")):
        with pytest.raises(FlintError) as refused:
            await act
        assert refused.value.status == 403 and refused.value.code == "role_forbidden"
    assert service.order_actions(nobody, order) == service.OrderActions(False, False, False)


async def test_a_second_send_while_the_first_acts_waits_for_its_outcome_and_acts_not(rt):
    merchant, _, member = await _team(rt, "support")
    order = await make_order(rt, merchant.id)
    who = service.Viewer("ws_1", merchant, member)
    token = service.form_token(rt, who)
    scope, key = f"staff:{member.id}", f"console:{forms.check(rt, token, 'ws_1')}"
    request_hash = idempotency.fingerprint("POST", f"create link {order.id}", b"{}")
    assert await idempotency.begin(rt, scope, key, request_hash) is None  # the first send is acting
    second = asyncio.create_task(service.create_link(rt, who, order.id, token))
    await asyncio.sleep(0.3)
    assert not second.done()
    first = service.Outcome(303, location=f"/dashboard/orders/{order.id}?link=plink_first")
    await idempotency.finish(rt, scope, key, 303, "application/json", first.to_json())
    assert await second == first
    assert await _count(rt, "payment_links", order.id) == 0


# -- amounts ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("typed", "currency", "minor"), [
    ("12.50", "usd", 1250), ("12.5", "usd", 1250), ("12", "usd", 1200), ("1,234.56", "eur", 123456),
    (" 0.01 ", "usd", 1), (".5", "usd", 50), ("12.", "usd", 1200), ("1234", "jpy", 1234), ("1.234", "kwd", 1234),
    ("999999.99", "usd", 99_999_999),
])
def test_amounts_are_typed_in_major_units(typed, currency, minor):
    assert service.parse_amount(typed, currency) == minor


@pytest.mark.parametrize(("typed", "currency"), [
    ("", "usd"), ("abc", "usd"), ("-1", "usd"), ("1e3", "usd"), ("0", "usd"), ("0.00", "usd"), ("1.001", "usd"),
    ("12.5", "jpy"), ("1,23", "usd"), ("1000000.00", "usd"), ("١٢", "usd"), ("NaN", "usd"), ("1.2.3", "usd"),
])
def test_other_amounts_are_refused(typed, currency):
    with pytest.raises(FlintError) as refused:
        service.parse_amount(typed, currency)
    assert refused.value.status == 400 and refused.value.param == "amount"


def test_the_default_amount_is_written_in_major_units():
    assert service.major_units(3150, "eur") == "31.50"
    assert service.major_units(1234, "jpy") == "1234"
    assert service.major_units(1234, "kwd") == "1.234"


def test_the_reasons_are_the_apis():
    assert [value for value, _ in service.REFUND_REASONS] == list(REASONS)
    assert json.dumps(service.REFUND_REASONS)  # plain data for the template
