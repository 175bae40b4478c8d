"""The console's Settings page, `Email to buyers` (docs/api.md 15 and 16), over real HTTP: owners and
developers turn the merchant's ``receipts`` on and off with the checkbox `Email receipts to buyers` (the
merchants service POST /v1/merchant uses, recorded in the audit trail with the staff member); support sees the
setting and cannot change it; the form is refused without its token and acts once when sent twice."""
from __future__ import annotations

import json
import re

import httpx
import pytest

from flint.forms import service as forms
from flint.merchants import service as merchants

from . import test_keys_settings as keys_settings
from .test_keys_settings import _session_id, csrf_of

as_role = keys_settings.as_role  # the fixture: a signed-in member of a new merchant with a role

RECEIPTS = "/dashboard/settings/receipts"


def checkbox(page: str) -> str | None:
    found = re.search(r'<input id="receipts" name="receipts" type="checkbox"[^>]*>', page)
    return found.group(0) if found else None


async def _trail(rt, merchant_id: str) -> list[tuple[str, str, str | None, dict]]:
    """The settings changes in the merchant's audit trail (inviting the member is in it too)."""
    async with rt.db.read() as conn:
        rows = await conn.fetch_all("SELECT action, actor_type, actor_id, changes FROM audit_log WHERE merchant_id = :m "
                                    "AND action = 'settings.updated' ORDER BY created_at, id", {"m": merchant_id})
    return [(r["action"], r["actor_type"], r["actor_id"], json.loads(r["changes"])) for r in rows]


@pytest.mark.parametrize("role", ["owner", "developer"])
async def test_owners_and_developers_turn_emailed_receipts_on_and_off(server, server_rt, as_role, role):
    merchant, member, secret, browser = await as_role(role)
    page = await browser.get("/dashboard/settings")
    assert page.status_code == 200 and '<h2 id="mail-h">Email to buyers</h2>' in page.text
    box = checkbox(page.text)
    assert box and "checked" not in box and '<label for="receipts">Email receipts to buyers</label>' in page.text
    # This server has no SMTP settings: the page says nothing would be sent.
    assert "Mail is not configured on this server" in page.text

    on = await browser.post(RECEIPTS, data={"csrf_token": csrf_of(page.text, RECEIPTS), "receipts": "on"})
    assert on.status_code == 303 and on.headers["location"] == "/dashboard/settings?notice=receipts_on"
    assert (await merchants.get_merchant(server_rt, merchant.id)).receipts == 1
    async with httpx.AsyncClient(base_url=server.url, headers={"Authorization": f"Bearer {secret}"}) as api:
        assert (await api.get("/v1/merchant")).json()["receipts"] is True
    page = await browser.get(on.headers["location"])
    assert "Buyers will be emailed a receipt" in page.text and "checked" in checkbox(page.text)

    # Unticked, a checkbox is not sent at all: off.
    off = await browser.post(RECEIPTS, data={"csrf_token": csrf_of(page.text, RECEIPTS)})
    assert off.status_code == 303 and off.headers["location"] == "/dashboard/settings?notice=receipts_off"
    assert (await merchants.get_merchant(server_rt, merchant.id)).receipts == 0
    page = await browser.get(off.headers["location"])
    assert "checked" not in checkbox(page.text)
    # Each change is in the audit trail with the member who made it; saving what is already so records nothing.
    again = await browser.post(RECEIPTS, data={"csrf_token": csrf_of(page.text, RECEIPTS)})
    assert again.status_code == 303
    assert await _trail(server_rt, merchant.id) == [
        ("settings.updated", "staff", member.id, {"receipts": {"from": False, "to": True}}),
        ("settings.updated", "staff", member.id, {"receipts": {"from": True, "to": False}})]


async def test_support_sees_the_setting_and_cannot_change_it(server, server_rt, as_role):
    merchant, _, _, browser = await as_role("support")
    await merchants.update_merchant(server_rt, merchant.id, receipts=True)
    page = await browser.get("/dashboard/settings")
    assert page.status_code == 200 and "Now <strong>on</strong>" in page.text
    assert checkbox(page.text) is None and f'action="{RECEIPTS}"' not in page.text
    session_id = await _session_id(server_rt, browser)
    answer = await browser.post(RECEIPTS, data={"csrf_token": forms.issue(server_rt, session_id)})
    assert answer.status_code == 403 and "You do not have access to this page" in answer.text
    assert (await merchants.get_merchant(server_rt, merchant.id)).receipts == 1
    assert [row[1] for row in await _trail(server_rt, merchant.id)] == ["merchant"]  # the test's own change only


async def test_the_receipts_form_without_its_token_is_refused_and_sent_twice_acts_once(server, server_rt, as_role):
    merchant, _, _, browser = await as_role("owner")
    _, _, _, other_browser = await as_role("owner")
    foreign = (await other_browser.get("/dashboard/settings")).text
    for token in (None, "forged", csrf_of(foreign, RECEIPTS)):
        answer = await browser.post(RECEIPTS, data={"receipts": "on", **({} if token is None else {"csrf_token": token})})
        assert answer.status_code == 403 and "Nothing was changed" in answer.text
    assert (await merchants.get_merchant(server_rt, merchant.id)).receipts == 0
    page = (await browser.get("/dashboard/settings")).text
    token = csrf_of(page, RECEIPTS)
    first = await browser.post(RECEIPTS, data={"csrf_token": token, "receipts": "on"})
    await merchants.update_merchant(server_rt, merchant.id, receipts=False)  # changed elsewhere meanwhile
    second = await browser.post(RECEIPTS, data={"csrf_token": token, "receipts": "on"})
    assert first.status_code == second.status_code == 303
    assert second.headers["location"] == first.headers["location"]
    assert (await merchants.get_merchant(server_rt, merchant.id)).receipts == 0  # the replay did not act again
