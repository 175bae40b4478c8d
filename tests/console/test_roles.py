"""The console and staff roles (docs/api.md 15): every member whose role reads orders sees the Orders pages
of their own merchant only; what a role may not open is refused in the service (403 role_forbidden) and
its link is not shown."""
from __future__ import annotations

import dataclasses
import itertools
import re

import httpx
import pytest

from flint.console import service
from flint.errors import FlintError
from flint.merchants import service as merchants
from flint.staff import service as staff
from support.factories import make_order

PASSWORD = "a long and correct password"
_counter = itertools.count(1)


def csrf_of(page: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


async def _team(rt, role: str):
    """A merchant, its owner, and a member with ``role`` who accepted their invitation."""
    n = next(_counter)
    merchant, _ = await merchants.create_merchant(rt, name=f"Team Shop {n}", email=f"team{n}-{id(rt)}@shop.example",
                                                  password=PASSWORD)
    async with rt.db.transaction() as conn:
        owner = await staff.ensure_owner(conn, merchant)
    _, token = await staff.invite(rt, owner, f"{role}{n}-{id(rt)}@shop.example", role)
    member = await staff.accept_invitation(rt, token, PASSWORD)
    return merchant, owner, member


NAV_OF = {
    "owner": ["Overview", "Orders", "Payment links", "Webhooks", "Apps", "API keys", "Settings", "Team"],
    "developer": ["Overview", "Orders", "Payment links", "Webhooks", "Apps", "API keys", "Settings"],
    "support": ["Overview", "Orders", "Payment links", "Webhooks", "Apps", "Settings"],
}


@pytest.mark.parametrize("role", ["support", "developer"])
async def test_a_member_reads_their_merchants_orders_only(server, server_rt, role):
    merchant, _, member = await _team(server_rt, role)
    ours = await make_order(server_rt, merchant.id)
    other, _, _ = await _team(server_rt, "support")
    theirs = await make_order(server_rt, other.id)
    async with httpx.AsyncClient(base_url=server.url, follow_redirects=False, timeout=30) as browser:
        login = await browser.get("/login")
        done = await browser.post("/login", data={"csrf_token": csrf_of(login.text), "email": member.email,
                                                  "password": PASSWORD, "next": "/dashboard/orders"})
        assert done.status_code == 303 and done.headers["location"] == "/dashboard/orders"
        page = await browser.get("/dashboard/orders")
        assert page.status_code == 200
        assert re.findall(r'<a href="/dashboard/orders/(ord_\w+)">', page.text) == [ours.id]
        assert f"{member.email} ({role})" in page.text and merchant.name in page.text
        nav = re.search(r'<nav class="side" aria-label="Console">(.*?)</nav>', page.text, re.DOTALL).group(1)
        # Each role sees the links of the pages it may open (docs/api.md 15): support no API keys, only
        # owners Team.
        assert re.findall(r">([^<]+)</a>", nav) == NAV_OF[role]
        assert (await browser.get(f"/dashboard/orders/{ours.id}")).status_code == 200
        assert (await browser.get(f"/dashboard/orders/{theirs.id}")).status_code == 404
        assert (await browser.get("/dashboard")).status_code == 200


async def test_a_role_without_a_page_is_refused_in_the_service_and_not_shown_the_link(rt):
    merchant, owner, _ = await _team(rt, "support")
    await make_order(rt, merchant.id)
    # No role of docs/api.md 15 lacks orders:read; one that did (a role of tomorrow) is refused here.
    nobody = service.Viewer("ws_x", merchant, dataclasses.replace(owner, role="nobody"))
    assert service.nav_links(nobody) == []
    with pytest.raises(FlintError) as refused:
        await service.orders_page(rt, nobody)
    assert refused.value.status == 403 and refused.value.code == "role_forbidden"
    with pytest.raises(FlintError) as refused:
        await service.overview(rt, nobody)
    assert refused.value.code == "role_forbidden"
    removed = service.Viewer("ws_x", merchant, dataclasses.replace(owner, removed_at=owner.created_at))
    with pytest.raises(FlintError):
        await service.orders_page(rt, removed)
    owner_view = service.Viewer("ws_x", merchant, owner)
    assert [label for label, _ in service.nav_links(owner_view)] == NAV_OF["owner"]
    assert dict(service.nav_links(owner_view))["Team"] == "/dashboard/team"
    assert len((await service.orders_page(rt, owner_view)).orders) == 1
