"""The console's Payment links page over real HTTP (docs/api.md 15): the merchant's links newest first, a
keyset page at a time, each with its order, status, URL and source, and Deactivate (flint.links, the API's
service, with the staff member as the actor): once per form, refused without its token, for a role without
links:write and across merchants, changing nothing."""
from __future__ import annotations

import asyncio
import html
import itertools
import re

import httpx
import pytest

from flint.actors import Actor
from flint.links import service as links
from flint.merchants import service as merchants
from flint.staff import service as staff
from support.factories import make_order

PASSWORD = "a long and correct password"
_counter = itertools.count(1)


async def _team(rt, role: str):
    n = next(_counter)
    merchant, key = await merchants.create_merchant(rt, name=f"Links Shop {n}",
                                                    email=f"links{n}-{id(rt)}@shop.example", password=PASSWORD)
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


async def _link(rt, merchant_id: str, order_id: str | None = None):
    order_id = order_id or (await make_order(rt, merchant_id)).id
    return await links.create_link(rt, merchant_id, order_id, expires_in=None, actor=Actor("merchant", merchant_id))


def rows(page: str) -> list[str]:
    return re.findall(r'<h2 id="title-(plink_\w+)">', page)


def deactivate_token(page: str, link_id: str) -> str:
    found = re.search(rf'<form method="post" action="/dashboard/payment_links/{link_id}/deactivate"[^>]*>\s*'
                      r'<input type="hidden" name="csrf_token" value="([^"]+)"', page)
    assert found, link_id
    return found.group(1)


async def _link_api(server, key: str, link_id: str) -> dict:
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as api:
        answer = await api.get(f"/v1/payment_links/{link_id}", headers={"Authorization": f"Bearer {key}"})
    assert answer.status_code == 200
    return answer.json()


@pytest.fixture
async def desk(server, server_rt):
    merchant, key, member = await _team(server_rt, "support")
    async with httpx.AsyncClient(base_url=server.url, follow_redirects=False, timeout=30) as browser:
        await _sign_in(browser, member.email)
        yield merchant, key, member, browser


@pytest.mark.parametrize("role", ["owner", "developer", "support"])
async def test_every_role_reads_its_merchants_links_newest_first(server, server_rt, role):
    merchant, _, member = await _team(server_rt, role)
    order = await make_order(server_rt, merchant.id)
    older = await _link(server_rt, merchant.id, order.id)
    newer = await _link(server_rt, merchant.id)
    other, _, _ = await _team(server_rt, "owner")
    theirs = await _link(server_rt, other.id)
    async with httpx.AsyncClient(base_url=server.url, follow_redirects=False, timeout=30) as browser:
        await _sign_in(browser, member.email)
        page = await browser.get("/dashboard/payment_links")
    assert page.status_code == 200
    assert rows(page.text) == [newer.id, older.id] and theirs.id not in page.text
    text = html.unescape(page.text)
    assert f'<a href="/dashboard/orders/{order.id}">{order.id}</a>' in text
    assert f"{server.url}/pay/{older.id}" in text and "Manual" in text and "Active" in text
    assert "Deactivate" in text  # every role of docs/api.md 15 may deactivate links
    assert 'aria-current="page">Payment links' in page.text or "Payment links</a>" not in page.text


async def test_the_list_pages_by_keyset(desk, server_rt):
    merchant, _, _, browser = desk
    order = await make_order(server_rt, merchant.id)
    made = [(await _link(server_rt, merchant.id, order.id)).id for _ in range(27)]
    first = await browser.get("/dashboard/payment_links")
    assert rows(first.text) == made[::-1][:25]
    older = re.search(r'<a class="older" href="([^"]+)" rel="next">Older links</a>', first.text).group(1)
    second = await browser.get(html.unescape(older))
    assert rows(second.text) == made[::-1][25:] and "Older links" not in second.text
    assert '<a class="newer" href="/dashboard/payment_links">Newest links</a>' in second.text
    # An unknown or foreign cursor is the first page.
    assert rows((await browser.get("/dashboard/payment_links?starting_after=plink_nope")).text) == made[::-1][:25]


async def test_deactivate_once_as_the_staff_member(desk, server, server_rt):
    merchant, key, member, browser = desk
    link = await _link(server_rt, merchant.id)
    keep = await _link(server_rt, merchant.id)
    page = (await browser.get("/dashboard/payment_links")).text
    form = {"csrf_token": deactivate_token(page, link.id)}
    action = f"/dashboard/payment_links/{link.id}/deactivate"
    first, second = await asyncio.gather(browser.post(action, data=form), browser.post(action, data=form))
    # The second waits for the first and answers with its outcome: both go to the same place.
    assert first.status_code == second.status_code == 303
    assert first.headers["location"] == second.headers["location"]
    done = first
    assert done.headers["location"] == f"/dashboard/payment_links?deactivated={link.id}"
    again = await browser.post(action, data=form)  # the back button, and the same form again
    assert again.status_code == 303 and again.headers["location"] == done.headers["location"]
    assert (await _link_api(server, key, link.id))["active"] is False
    assert (await _link_api(server, key, keep.id))["active"] is True
    async with server_rt.db.read() as conn:
        events = await conn.fetch_all("SELECT actor_type, actor_id FROM events WHERE type = 'payment_link.deactivated' "
                                      "AND order_id = :o", {"o": link.order_id})
    assert [dict(e) for e in events] == [{"actor_type": "staff", "actor_id": member.id}]
    after = (await browser.get(done.headers["location"])).text
    assert f"Payment link {link.id} was deactivated" in after and "Deactivated" in after
    assert f"/dashboard/payment_links/{link.id}/deactivate" not in after  # nothing more to do to it


async def test_deactivate_refused_without_a_token_for_a_role_and_across_merchants(desk, server, server_rt):
    merchant, key, member, browser = desk
    link = await _link(server_rt, merchant.id)
    page = (await browser.get("/dashboard/payment_links")).text
    token = deactivate_token(page, link.id)
    action = f"/dashboard/payment_links/{link.id}/deactivate"
    for data in ({}, {"csrf_token": ""}, {"csrf_token": token[:-4] + "AAAA"}):
        answer = await browser.post(action, data=data)
        assert answer.status_code == 403 and "Nothing was done" in answer.text
    # Another merchant's link, with a genuine token of this session: 404, and it stays active.
    other, their_key, _ = await _team(server_rt, "owner")
    theirs = await _link(server_rt, other.id)
    answer = await browser.post(f"/dashboard/payment_links/{theirs.id}/deactivate", data={"csrf_token": token})
    assert answer.status_code == 404 and theirs.id not in answer.text
    assert (await _link_api(server, their_key, theirs.id))["active"] is True
    # A role without links:write (changed after the page was shown).
    token = deactivate_token((await browser.get("/dashboard/payment_links")).text, link.id)
    async with server_rt.db.transaction() as conn:
        await conn.execute("UPDATE staff SET role = 'viewer' WHERE id = :id", {"id": member.id})
    answer = await browser.post(action, data={"csrf_token": token})
    assert answer.status_code == 403 and "You do not have access" in answer.text
    assert (await browser.get("/dashboard/payment_links")).status_code == 403
    assert (await _link_api(server, key, link.id))["active"] is True
