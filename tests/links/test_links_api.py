"""Payment links over real HTTP: the merchant API, and the link's hosted page as a browser with
JavaScript off uses it (the same form and confirm path as the hosted checkout)."""
from __future__ import annotations

import re

import httpx
import pytest

from flint.actors import SYSTEM
from flint.checkout import service as checkout
from flint.links import recovery
from support.factories import make_order, make_session

ORDER = {"currency": "usd", "line_items": [{"name": "Beans", "quantity": 2, "unit_amount": 1250}]}


async def _gone(rt, session_id: str) -> None:
    """abandon_after passes without the buyer coming back."""
    async with rt.db.transaction() as conn:
        await conn.execute("UPDATE checkout_sessions SET abandon_at = '2020-01-01T00:00:00.000000Z' WHERE id = :id",
                           {"id": session_id})


def token_of(html: str) -> str:
    return re.search(r'name="form_token" value="([^"]+)"', html).group(1)


def card_form(token, number="4242 4242 4242 4242"):
    return {"form_token": token, "card_number": number, "expiry": "12 / 34", "cvc": "123"}


@pytest.fixture
async def api(server, merchant):
    _, key = merchant
    async with server.async_client(key) as client:
        yield client


@pytest.fixture
async def browser(server):
    async with httpx.AsyncClient(base_url=server.url, follow_redirects=False, timeout=30) as client:
        yield client


async def test_create_read_list_and_deactivate(api, server):
    order = (await api.post("/v1/orders", json=ORDER)).json()
    made = await api.post("/v1/payment_links", json={"order": order["id"], "expires_in": 3600})
    assert made.status_code == 200, made.text
    link = made.json()
    assert link["id"].startswith("plink_") and len(link["id"]) >= 6 + 16
    assert link["url"] == f"{server.url}/pay/{link['id']}"
    assert (link["object"], link["order_id"], link["active"], link["source"], link["checkout_session_id"]) == (
        "payment_link", order["id"], True, "manual", None)
    assert (await api.get(f"/v1/payment_links/{link['id']}")).json() == link
    other = (await api.post("/v1/payment_links", json={"order": order["id"]})).json()
    listed = (await api.get("/v1/payment_links", params={"order": order["id"]})).json()
    assert [item["id"] for item in listed["data"]] == [other["id"], link["id"]]
    off = await api.post(f"/v1/payment_links/{link['id']}/deactivate")
    assert off.status_code == 200 and off.json()["active"] is False and off.json()["deactivated_at"]
    again = await api.post(f"/v1/payment_links/{link['id']}/deactivate")
    assert again.status_code == 409 and again.json()["code"] == "payment_link_inactive"
    types = [e["type"] for e in (await api.get(f"/v1/orders/{order['id']}/events")).json()["data"]]
    assert types == ["order.created", "payment_link.created", "payment_link.created", "payment_link.deactivated"]


@pytest.mark.parametrize("body, status, code", [
    ({"order": "ord_nope"}, 404, "order_not_found"),
    ({"order": "ord_x", "expires_in": 5}, 400, "parameter_invalid"),
    ({}, 400, "parameter_missing"),
    ({"order": "ord_x", "source": "recovery"}, 400, "parameter_unknown"),
])
async def test_bad_link_requests_change_nothing(api, body, status, code):
    answer = await api.post("/v1/payment_links", json=body)
    assert (answer.status_code, answer.json()["code"]) == (status, code)
    assert (await api.get("/v1/payment_links")).json()["data"] == []


async def test_a_link_for_a_paid_or_canceled_order_is_refused(api):
    order = (await api.post("/v1/orders", json=ORDER)).json()
    await api.post(f"/v1/orders/{order['id']}/cancel")
    answer = await api.post("/v1/payment_links", json={"order": order["id"]})
    assert (answer.status_code, answer.json()["code"]) == (409, "order_not_open")


async def test_the_link_page_pays_its_order_and_then_shows_the_receipt(api, browser, server):
    order = (await api.post("/v1/orders", json=ORDER)).json()
    link = (await api.post("/v1/payment_links", json={"order": order["id"]})).json()
    page = await browser.get(f"/pay/{link['id']}")
    assert page.status_code == 200 and "$25.00" in page.text
    assert f'action="/pay/{link["id"]}"' in page.text
    assert page.headers["x-frame-options"] == "DENY" and page.headers["cache-control"] == "no-store"
    paid = await browser.post(f"/pay/{link['id']}", data=card_form(token_of(page.text)))
    assert paid.status_code == 303 and paid.headers["location"] == f"/pay/{link['id']}/receipt"
    receipt = await browser.get(paid.headers["location"])
    assert receipt.status_code == 200 and "Payment received" in receipt.text and "4242" in receipt.text
    payment = (await api.get("/v1/payments", params={"order": order["id"]})).json()["data"][0]
    assert (payment["status"], payment["channel"], payment["payment_link_id"]) == ("succeeded", "payment_link", link["id"])
    assert (await api.get(f"/v1/orders/{order['id']}")).json()["status"] == "paid"
    again = await browser.get(f"/pay/{link['id']}")
    assert again.status_code == 200 and "This order has already been paid" in again.text
    assert 'name="card_number"' not in again.text


async def test_a_declined_card_and_a_three_d_secure_card_on_the_link_page(api, browser):
    order = (await api.post("/v1/orders", json=ORDER)).json()
    link = (await api.post("/v1/payment_links", json={"order": order["id"]})).json()
    page = await browser.get(f"/pay/{link['id']}")
    declined = await browser.post(f"/pay/{link['id']}", data=card_form(token_of(page.text), "4000 0000 0000 0002"))
    assert declined.status_code == 402 and "Your card was declined." in declined.text
    challenged = await browser.post(f"/pay/{link['id']}", data=card_form(token_of(declined.text), "4000 0027 6000 3184"))
    assert challenged.status_code == 303
    location = challenged.headers["location"]
    assert re.fullmatch(rf"/pay/{link['id']}/challenge/pay_\w+", location)
    challenge = await browser.get(location)
    approved = await browser.post(location, data={"form_token": token_of(challenge.text), "action": "approve"})
    assert approved.status_code == 303 and approved.headers["location"] == f"/pay/{link['id']}/receipt"
    assert (await api.get(f"/v1/orders/{order['id']}")).json()["status"] == "paid"


@pytest.mark.parametrize("state", ["deactivated", "expired", "canceled"])
async def test_a_closed_link_says_so_honestly(api, browser, server_rt, merchant, state):
    order = (await api.post("/v1/orders", json=ORDER)).json()
    link = (await api.post("/v1/payment_links", json={"order": order["id"]})).json()
    if state == "deactivated":
        await api.post(f"/v1/payment_links/{link['id']}/deactivate")
    elif state == "expired":
        async with server_rt.db.transaction() as conn:
            await conn.execute("UPDATE payment_links SET expires_at = '2020-01-01T00:00:00.000000Z' WHERE id = :id",
                               {"id": link["id"]})
    else:
        await api.post(f"/v1/orders/{order['id']}/cancel")
    page = await browser.get(f"/pay/{link['id']}")
    assert page.status_code == 410
    heading = {"deactivated": "This payment link is no longer active", "expired": "This payment link has expired",
               "canceled": "This order was canceled"}[state]
    assert heading in page.text and 'name="card_number"' not in page.text


async def test_an_unknown_link_is_a_plain_404_page(browser):
    page = await browser.get("/pay/plink_doesnotexist0000000000")
    assert page.status_code == 404 and page.headers["content-type"].startswith("text/html")
    assert "Page not found" in page.text


async def test_a_session_and_its_link_never_pay_twice_through_the_pages(api, browser, server_rt, merchant):
    merchant_obj, _ = merchant
    session = await make_session(server_rt, merchant_obj.id, mode="hosted", recovery=True)
    assert await checkout.record_buyer_left(server_rt, session)
    await _gone(server_rt, session.id)
    await recovery.sweep_dropped_off(server_rt, SYSTEM)
    shown = (await api.get(f"/v1/checkout/sessions/{session.id}")).json()
    link_id = shown["recovery"]["payment_link_id"]
    assert shown["recovery"]["drop_off_reason"] == "left"
    page = await browser.get(f"/pay/{link_id}")
    paid = await browser.post(f"/pay/{link_id}", data=card_form(token_of(page.text)))
    assert paid.status_code == 303
    # The buyer's old tab: the session's page now shows the receipt, and its form no longer pays.
    old = await browser.get(f"/checkout/{session.id}")
    assert "This order has already been paid" in old.text
    payments = (await api.get("/v1/payments", params={"order": session.order_id})).json()["data"]
    assert [p["status"] for p in payments] == ["succeeded"]


async def test_the_recovery_summary_over_http(api, server_rt, merchant):
    merchant_obj, _ = merchant
    session = await make_session(server_rt, merchant_obj.id, recovery=True)
    assert await checkout.record_buyer_left(server_rt, session)
    await _gone(server_rt, session.id)
    await recovery.sweep_dropped_off(server_rt, SYSTEM)
    figures = (await api.get("/v1/recovery/summary")).json()
    assert figures["object"] == "recovery_summary"
    assert figures["drop_offs"]["left"] >= 1 and figures["links_created"] >= 1
    ranged = await api.get("/v1/recovery/summary", params={"from": "2026-01-01", "to": "2026-01-02T00:00:00Z"})
    assert ranged.status_code == 200 and ranged.json()["drop_offs"]["total"] == 0
    assert ranged.json()["from"] == "2026-01-01T00:00:00Z" and ranged.json()["to"] == "2026-01-02T00:00:00Z"
    for params, param in (({"from": "yesterday"}, "from"), ({"from": "2026-02-01", "to": "2026-01-01"}, "from"),
                          ({"since": "2026-01-01"}, "since")):
        bad = await api.get("/v1/recovery/summary", params=params)
        assert bad.status_code == 400 and bad.json()["param"] == param, bad.text


async def test_an_order_link_needs_an_order_of_this_merchant(api, server_rt):
    from support.factories import make_merchant

    other, _ = await make_merchant(server_rt)
    theirs = await make_order(server_rt, other.id)
    answer = await api.post("/v1/payment_links", json={"order": theirs.id})
    assert answer.status_code == 404
