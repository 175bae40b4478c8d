"""The console's Webhooks and Apps pages over real HTTP (docs/api.md 15), as a browser uses them: each role
reads them (support too, without the buttons); a developer adds an endpoint (its secret shown once), rolls
its secret and retries a failed delivery, seeing the new attempt at a real receiver; an owner approves an
app's pending update and uninstalls it. Every action is the API's own service, records the staff member
where the service records an actor, is refused without its form token and for a role lacking it (403,
nothing changed), is 404 for another merchant's objects, and acts once when the form comes twice."""
from __future__ import annotations

import asyncio
import html
import itertools
import re
import secrets
import time
from contextlib import asynccontextmanager

import httpx
import pytest

from flint.accounts import service as accounts
from flint.apps import service as apps
from flint.forms import service as forms
from flint.merchants import service as merchants
from flint.oauth import service as oauth
from flint.oauth.service import follow_app_change
from flint.runtime import Runtime
from flint.scopes import SCOPE_WORDS
from flint.staff import service as staff
from flint.webhooks import service as webhooks
from support import oauth as oauth_steps
from support.factories import make_order
from support.receiver import Receiver
from support.server import start_server, stop_server

PASSWORD = "a long and correct password"
APP_EVENTS = "http://127.0.0.1:9/app-events"  # an installed app's own endpoint: the app's, never listed
_counter = itertools.count(1)


def csrf_of(page: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


def form_token(page: str, action: str) -> str:
    """The single-use token of the form posting to ``action``."""
    found = re.search(rf'<form method="post" action="{re.escape(action)}"[^>]*>\s*'
                      r'<input type="hidden" name="csrf_token" value="([^"]+)"', page)
    assert found, f"no form to {action}"
    return found.group(1)


def secret_shown(page: str) -> str:
    return html.unescape(re.search(r'<input id="secret" type="text" readonly value="([^"]+)"', page).group(1))


@pytest.fixture(scope="module")
def receiver():
    live = Receiver().start()
    yield live
    live.stop()


async def _team(rt, role: str | None = None):
    """A merchant (with its secret key) and the member who will sign in: its owner, or a member with
    ``role`` who accepted an invitation."""
    n = next(_counter)
    merchant, key = await merchants.create_merchant(rt, name=f"Hooks Shop {n}",
                                                    email=f"hooks{n}-{secrets.token_hex(3)}@shop.example",
                                                    password=PASSWORD)
    async with rt.db.transaction() as conn:
        owner = await staff.ensure_owner(conn, merchant)
    if role is None or role == "owner":
        return merchant, key, owner
    _, token = await staff.invite(rt, owner, f"{role}{n}-{secrets.token_hex(3)}@shop.example", role)
    return merchant, key, await staff.accept_invitation(rt, token, PASSWORD)


@asynccontextmanager
async def _signed_in(server, email: str):
    async with httpx.AsyncClient(base_url=server.url, follow_redirects=False, timeout=30) as browser:
        login = await browser.get("/login")
        done = await browser.post("/login", data={"csrf_token": csrf_of(login.text), "email": email,
                                                  "password": PASSWORD})
        assert done.status_code == 303, done.text
        yield browser


async def _endpoint(rt, merchant_id: str, url: str = "https://hooks.example/flint"):
    endpoint, _ = await webhooks.create_endpoint(rt, merchant_id, url=url, events=["order.*"], description=None)
    return endpoint


# -- webhooks --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("role", ["owner", "developer", "support"])
async def test_each_role_reads_the_merchants_own_endpoints_and_support_gets_no_buttons(server, server_rt, role):
    merchant, _, member = await _team(server_rt, role)
    mine = await _endpoint(server_rt, merchant.id, "https://hooks.example/mine")
    other, _, _ = await _team(server_rt)
    await _endpoint(server_rt, other.id, "https://hooks.example/theirs")
    async with _signed_in(server, member.email) as browser:
        page = await browser.get("/dashboard/webhooks")
        assert page.status_code == 200
        assert "https://hooks.example/mine" in page.text and mine.id in page.text
        assert "hooks.example/theirs" not in page.text
        assert "Enabled" in page.text and "order.*" in page.text
        acts = ("Roll secret", "Add endpoint</button>")
        assert all((a in page.text) == (role != "support") for a in acts)
        assert (await browser.get(f"/dashboard/webhooks/{mine.id}")).status_code == 200
        assert "whsec_" not in page.text  # no secret is ever on the page unasked


async def test_signed_out_goes_to_sign_in(server):
    async with httpx.AsyncClient(base_url=server.url, follow_redirects=False) as browser:
        for path in ("/dashboard/webhooks", "/dashboard/apps", "/dashboard/webhooks/we_x"):
            answer = await browser.get(path)
            assert answer.status_code == 303 and answer.headers["location"].startswith("/login?next=/dashboard/")


async def test_a_developer_adds_an_endpoint_whose_secret_is_shown_once(server, server_rt):
    merchant, _, member = await _team(server_rt, "developer")
    async with _signed_in(server, member.email) as browser:
        page = await browser.get("/dashboard/webhooks")
        token = form_token(page.text, "/dashboard/webhooks/endpoints")
        form = {"csrf_token": token, "url": "https://hooks.example/new", "events": "order.paid, payment.*",
                "description": "Fulfilment"}
        added = await browser.post("/dashboard/webhooks/endpoints", data=form)
        assert added.status_code == 200
        secret = secret_shown(added.text)
        [endpoint], _ = await webhooks.list_endpoints(server_rt, merchant.id, 10, None)
        assert endpoint.url == "https://hooks.example/new" and endpoint.event_filters == ["order.paid", "payment.*"]
        assert server_rt.secrets.open(endpoint.secret) == secret
        assert endpoint.to_dict()["created_by"] == {"type": "staff", "id": member.id}
        # The same form again (a double click, the back button): nothing more is made, no secret shown.
        again = await browser.post("/dashboard/webhooks/endpoints", data=form)
        assert again.status_code == 303 and again.headers["location"] == "/dashboard/webhooks?notice=done"
        assert len((await webhooks.list_endpoints(server_rt, merchant.id, 10, None))[0]) == 1
        shown = await browser.get("/dashboard/webhooks")
        assert secret not in shown.text and "whsec_" not in shown.text
        # The API's own validation, said at the form, which keeps what was typed.
        page = await browser.get("/dashboard/webhooks")
        wrong = await browser.post("/dashboard/webhooks/endpoints", data={
            "csrf_token": form_token(page.text, "/dashboard/webhooks/endpoints"), "url": "https://hooks.example/x",
            "events": "order.shipped"})
        assert wrong.status_code == 400
        assert "&#39;order.shipped&#39; is not an event type" in wrong.text and 'aria-invalid="true"' in wrong.text
        assert 'value="https://hooks.example/x"' in wrong.text
        assert len((await webhooks.list_endpoints(server_rt, merchant.id, 10, None))[0]) == 1


async def test_roll_secret_shows_the_new_secret_once(server, server_rt):
    merchant, _, member = await _team(server_rt, "developer")
    endpoint = await _endpoint(server_rt, merchant.id)
    before = server_rt.secrets.open(endpoint.secret)
    async with _signed_in(server, member.email) as browser:
        page = await browser.get("/dashboard/webhooks")
        action = f"/dashboard/webhooks/{endpoint.id}/roll_secret"
        form = {"csrf_token": form_token(page.text, action)}
        rolled = await browser.post(action, data=form)
        assert rolled.status_code == 200 and "New signing secret" in rolled.text
        secret = secret_shown(rolled.text)
        after = await webhooks.get_endpoint(server_rt, merchant.id, endpoint.id)
        assert secret != before and server_rt.secrets.open(after.secret) == secret
        assert server_rt.secrets.open(after.previous_secret) == before
        again = await browser.post(action, data=form)
        assert again.status_code == 303
        assert server_rt.secrets.open((await webhooks.get_endpoint(server_rt, merchant.id, endpoint.id)).secret) == secret


@pytest.fixture(scope="module")
def slow_retry_server(tmp_path_factory):
    """A live Flint whose automatic webhook retry waits an hour: the second attempt can only be the
    console's Retry."""
    live = start_server(tmp_path_factory.mktemp("slow-retry"), {"FLINT_WEBHOOK_RETRY_SCHEDULE": "3600,3600"})
    yield live
    stop_server(live)


async def _wait_for_page(browser, path: str, text: str, timeout: float = 15) -> str:
    deadline = time.monotonic() + timeout
    while True:
        page = await browser.get(path)
        if text in page.text:
            return page.text
        assert time.monotonic() < deadline, f"{text!r} never appeared on {path}"
        await asyncio.sleep(0.1)


async def test_a_developer_retries_a_failed_delivery_and_sees_the_new_attempt(slow_retry_server, receiver):
    server = slow_retry_server
    rt = await Runtime.start(server.runtime_config())
    try:
        merchant, _, member = await _team(rt, "developer")
        path = f"/retry-{secrets.token_hex(4)}"
        url = receiver.script(path, [500, 200])
        endpoint, _ = await webhooks.create_endpoint(rt, merchant.id, url=url, events=["order.created"],
                                                     description=None)
        await make_order(rt, merchant.id)
        receiver.wait_for(path, 1)
        async with _signed_in(server, member.email) as browser:
            page = await _wait_for_page(browser, "/dashboard/webhooks", "HTTP 500")
            [delivery], _ = await webhooks.list_deliveries(rt, merchant.id, endpoint.id, 10, None)
            assert delivery.attempts == 1 and "Retrying" in page
            action = f"/dashboard/webhook_deliveries/{delivery.id}/retry"
            form = {"csrf_token": form_token(page, action), "back": "/dashboard/webhooks"}
            retried = await browser.post(action, data=form)
            assert retried.status_code == 303
            assert retried.headers["location"] == "/dashboard/webhooks?notice=retried"
            receiver.wait_for(path, 2)
            page = await _wait_for_page(browser, "/dashboard/webhooks", "HTTP 200")
            assert "Succeeded" in page and "HTTP 500" in page
            attempts = await webhooks.list_attempts(rt, merchant.id, delivery.id)
            assert [a.status_code for a in attempts] == [500, 200]
            # The same Retry form again: acts once (a third send would be an attempt more).
            again = await browser.post(action, data=form)
            assert again.status_code == 303 and again.headers["location"].endswith("notice=done")
            await asyncio.sleep(1.5)
            assert len(receiver.at(path)) == 2
            assert len(await webhooks.list_attempts(rt, merchant.id, delivery.id)) == 2
            # The endpoint's own page pages through its deliveries and retries come back to it.
            own = await browser.get(f"/dashboard/webhooks/{endpoint.id}")
            assert own.status_code == 200 and delivery.id in own.text and "HTTP 200" in own.text
    finally:
        await rt.stop()


async def test_webhook_actions_are_refused_without_the_form_token_for_support_and_across_merchants(server, server_rt):
    merchant, _, developer = await _team(server_rt, "developer")
    _, invitation = await staff.invite(server_rt, await _team_owner(server_rt, merchant),
                                       f"s-{secrets.token_hex(3)}@shop.example", "support")
    support = await staff.accept_invitation(server_rt, invitation, PASSWORD)
    endpoint = await _endpoint(server_rt, merchant.id)
    secret = endpoint.secret
    await make_order(server_rt, merchant.id)  # a delivery (to an unreachable host: it fails)
    [delivery], _ = await webhooks.list_deliveries(server_rt, merchant.id, endpoint.id, 10, None)
    other, _, _ = await _team(server_rt)
    theirs = await _endpoint(server_rt, other.id)
    await make_order(server_rt, other.id)
    [their_delivery], _ = await webhooks.list_deliveries(server_rt, other.id, theirs.id, 10, None)

    def unchanged():
        return webhooks.list_endpoints(server_rt, merchant.id, 20, None)

    count = len((await unchanged())[0])
    async with _signed_in(server, developer.email) as dev, _signed_in(server, support.email) as sup:
        # No token, or a forged one: 403, nothing changed.
        for token in (None, "forged"):
            data = {"url": "https://hooks.example/no", "events": "*"} | ({"csrf_token": token} if token else {})
            refused = await dev.post("/dashboard/webhooks/endpoints", data=data)
            assert refused.status_code == 403 and "not accepted" in refused.text
            refused = await dev.post(f"/dashboard/webhooks/{endpoint.id}/roll_secret", data=data)
            assert refused.status_code == 403
            refused = await dev.post(f"/dashboard/webhook_deliveries/{delivery.id}/retry", data=data)
            assert refused.status_code == 403
        # Support's own genuine tokens (tokens are the session's: a page support may read issues them).
        sup_page = (await sup.get("/dashboard/webhooks")).text
        assert "Roll secret" not in sup_page
        for action, data in (("/dashboard/webhooks/endpoints", {"url": "https://hooks.example/no", "events": "*"}),
                             (f"/dashboard/webhooks/{endpoint.id}/roll_secret", {}),
                             (f"/dashboard/webhook_deliveries/{delivery.id}/retry", {})):
            token = await _token_for(server_rt, sup)
            refused = await sup.post(action, data=dict(data, csrf_token=token))
            assert refused.status_code == 403 and "do not have access" in refused.text
        # A developer's token used by support's session is not support's: 403 too.
        dev_token = form_token((await dev.get("/dashboard/webhooks")).text, f"/dashboard/webhooks/{endpoint.id}/roll_secret")
        assert (await sup.post(f"/dashboard/webhooks/{endpoint.id}/roll_secret",
                               data={"csrf_token": dev_token})).status_code == 403
        after, _ = await unchanged()
        assert len(after) == count
        assert (await webhooks.get_endpoint(server_rt, merchant.id, endpoint.id)).secret == secret
        assert len(await webhooks.list_attempts(server_rt, merchant.id, delivery.id)) <= 1
        # Another merchant's endpoint and delivery: 404, like an unknown id, and untouched.
        assert (await dev.get(f"/dashboard/webhooks/{theirs.id}")).status_code == 404
        for action in (f"/dashboard/webhooks/{theirs.id}/roll_secret",
                       f"/dashboard/webhook_deliveries/{their_delivery.id}/retry"):
            answer = await dev.post(action, data={"csrf_token": await _token_for(server_rt, dev)})
            assert answer.status_code == 404
        assert (await webhooks.get_endpoint(server_rt, other.id, theirs.id)).secret == theirs.secret


async def _team_owner(rt, merchant):
    async with rt.db.transaction() as conn:
        return await staff.ensure_owner(conn, merchant)


async def _token_for(rt, browser) -> str:
    """A genuine single-use form token of this browser's sign-in, as any console form of it carries (a
    support member's pages have no action forms: this is what one forged from their own session is)."""
    found = await accounts.current(rt, browser.cookies.get("flint_session"))
    assert found is not None
    return forms.issue(rt, found[0])


# -- apps ------------------------------------------------------------------------------------------------

async def _installed(server, server_rt, browser, shop):
    """An app installed on ``shop`` through the consent page (the browser signs in as the shop)."""
    dev, _ = await merchants.create_merchant(server_rt, name="Dev", email=f"d{secrets.token_hex(4)}@dev.example",
                                             password=PASSWORD)
    app, client_secret, _ = await apps.create_app(
        server_rt, dev.id, name=f"Stock Sync {secrets.token_hex(2)}", redirect_uris=[oauth_steps.REDIRECT],
        scopes=["orders:read", "payments:read"], webhook_url=APP_EVENTS, webhook_events=["order.*"])
    token, _ = await oauth_steps.install(server, browser, app, client_secret, shop.email)
    return app, token["installation_id"]


async def _widen(server_rt, app):
    await apps.update_app(server_rt, app.developer_merchant_id, app.id,
                          {"scopes": ["orders:read", "payments:read", "refunds:write"]}, follow_app_change)


async def test_an_owner_approves_an_apps_pending_update_and_uninstalls_it(server, server_rt):
    shop, key, owner = await _team(server_rt)
    async with httpx.AsyncClient(base_url=server.url, follow_redirects=False, timeout=30) as browser:
        app, installation_id = await _installed(server, server_rt, browser, shop)
        await _widen(server_rt, app)
        # The app's endpoint on this merchant is the app's to manage: not on the Webhooks page (as the API).
        assert APP_EVENTS not in (await browser.get("/dashboard/webhooks")).text
        page = await browser.get("/dashboard/apps")
        assert page.status_code == 200 and app.name in page.text
        assert html.escape(SCOPE_WORDS["orders:read"]) in page.text
        assert "Update waiting for your approval" in page.text and html.escape(SCOPE_WORDS["refunds:write"]) in page.text
        action = f"/dashboard/apps/{installation_id}/approve_update"
        form = {"csrf_token": form_token(page.text, action)}
        approved = await browser.post(action, data=form)
        assert approved.status_code == 303 and approved.headers["location"] == "/dashboard/apps?notice=approved"
        installation = await oauth.get_installation(server_rt, shop.id, installation_id)
        assert installation.pending is None and "refunds:write" in installation.consent.scopes
        page = await browser.get(approved.headers["location"])
        assert "The update is approved" in page.text and "Update waiting" not in page.text
        again = await browser.post(action, data=form)  # the same form again: acts once, no 409 page
        assert again.status_code == 303 and again.headers["location"].endswith("notice=done")

        action = f"/dashboard/apps/{installation_id}/uninstall"
        form = {"csrf_token": form_token(page.text, action)}
        gone = await browser.post(action, data=form)
        assert gone.status_code == 303 and gone.headers["location"] == "/dashboard/apps?notice=uninstalled"
        assert (await oauth.get_installation(server_rt, shop.id, installation_id)).status == "uninstalled"
        again = await browser.post(action, data=form)
        assert again.status_code == 303 and again.headers["location"].endswith("notice=done")
        page = await browser.get("/dashboard/apps")
        assert "Uninstalled" in page.text and f"/dashboard/apps/{installation_id}/uninstall" not in page.text
    async with server.async_client(key) as api:
        events = (await api.get("/v1/events", params={"type": "app.uninstalled"})).json()["data"]
    uninstalled = [e for e in events if e["type"] == "app.uninstalled"]
    assert [e["actor"] for e in uninstalled] == [{"type": "staff", "id": owner.id}]


async def test_app_actions_are_refused_without_the_token_for_support_and_across_merchants(server, server_rt):
    shop, _, owner = await _team(server_rt)
    async with httpx.AsyncClient(base_url=server.url, follow_redirects=False, timeout=30) as browser:
        app, installation_id = await _installed(server, server_rt, browser, shop)
        await _widen(server_rt, app)
        other, _, _ = await _team(server_rt)
        async with httpx.AsyncClient(base_url=server.url, follow_redirects=False, timeout=30) as theirs_browser:
            their_app, their_installation = await _installed(server, server_rt, theirs_browser, other)
        _, token = await staff.invite(server_rt, owner, f"sup-{secrets.token_hex(3)}@shop.example", "support")
        support = await staff.accept_invitation(server_rt, token, PASSWORD)
        for action in (f"/dashboard/apps/{installation_id}/approve_update", f"/dashboard/apps/{installation_id}/uninstall"):
            for data in ({}, {"csrf_token": "forged"}):
                assert (await browser.post(action, data=data)).status_code == 403
        async with _signed_in(server, support.email) as sup:
            page = await sup.get("/dashboard/apps")
            assert page.status_code == 200 and app.name in page.text and "Update waiting" in page.text
            assert "Approve update</button>" not in page.text and "Uninstall</button>" not in page.text
            for action in (f"/dashboard/apps/{installation_id}/approve_update",
                           f"/dashboard/apps/{installation_id}/uninstall"):
                refused = await sup.post(action, data={"csrf_token": await _token_for(server_rt, sup)})
                assert refused.status_code == 403 and "do not have access" in refused.text
        # Another merchant's installation: 404, untouched.
        for action in (f"/dashboard/apps/{their_installation}/approve_update",
                       f"/dashboard/apps/{their_installation}/uninstall"):
            assert (await browser.post(action, data={"csrf_token": await _token_for(server_rt, browser)})).status_code == 404
        assert their_app.name not in (await browser.get("/dashboard/apps")).text
    installation = await oauth.get_installation(server_rt, shop.id, installation_id)
    assert installation.status == "active" and installation.pending is not None
    assert (await oauth.get_installation(server_rt, other.id, their_installation)).status == "active"


async def test_the_apps_page_shows_each_apps_recent_hook_calls(server, server_rt, receiver):
    """Outcome, latency and what Flint applied, from the merchant's hook calls (GET /v1/hook_calls)."""
    shop, key, _ = await _team(server_rt)
    dev, _ = await merchants.create_merchant(server_rt, name="Dev", email=f"d{secrets.token_hex(4)}@dev.example",
                                             password=PASSWORD)
    path = f"/hook-{secrets.token_hex(4)}"
    receiver.script(path, [200], body=b'{"actions": [{"type": "annotate", "data": {"gift": true}}]}')
    app, client_secret, _ = await apps.create_app(
        server_rt, dev.id, name="Gift Notes", redirect_uris=[oauth_steps.REDIRECT], scopes=["orders:read"],
        hook_url=receiver.url(path), hooks=["checkout.before_payment"])
    async with httpx.AsyncClient(base_url=server.url, follow_redirects=False, timeout=30) as browser:
        await oauth_steps.install(server, browser, app, client_secret, shop.email, scope="orders:read")
        async with server.async_client(key) as api:
            session = (await api.post("/v1/checkout/sessions", json={
                "order": {"currency": "usd", "line_items": [{"name": "Beans", "quantity": 1, "unit_amount": 2400}]},
                "mode": "embedded", "success_url": "https://shop.example/thanks"})).json()
        async with server.async_client(session["client_token"]) as buyer:
            paid = await buyer.post(f"/v1/checkout/sessions/{session['id']}/confirm", json={"card": {
                "number": "4242 4242 4242 4242", "exp_month": 12, "exp_year": 2034, "cvc": "123"}})
        assert paid.status_code == 200, paid.text
        async with server.async_client(key) as api:
            [call] = (await api.get("/v1/hook_calls", params={"order": session["order_id"]})).json()["data"]
        page = await browser.get("/dashboard/apps")
    found = re.search(r"<caption[^>]*>Gift Notes.{1,6}s recent hook calls.*?</table>", page.text, re.DOTALL)
    assert found, page.text[-3000:]
    calls = found.group(0)
    assert f'href="/dashboard/orders/{session["order_id"]}"' in calls and "Answered" in calls
    assert f"{call['latency_ms']} ms" in calls and "annotate" in calls
    assert html.escape(SCOPE_WORDS["orders:read"]) in page.text
    assert "Be asked before each payment" in page.text


async def test_an_endpoints_own_page_pages_through_its_deliveries(server, server_rt):
    merchant, _, member = await _team(server_rt, "support")
    endpoint = await _endpoint(server_rt, merchant.id, "https://127.0.0.1:9/pages")
    for _ in range(23):  # one order.created delivery each
        await make_order(server_rt, merchant.id)
    other, _, _ = await _team(server_rt)
    theirs = await _endpoint(server_rt, other.id)
    await make_order(server_rt, other.id)
    [their_delivery], _ = await webhooks.list_deliveries(server_rt, other.id, theirs.id, 10, None)
    everything, _ = await webhooks.list_deliveries(server_rt, merchant.id, endpoint.id, 50, None)
    async with _signed_in(server, member.email) as browser:
        first = await browser.get(f"/dashboard/webhooks/{endpoint.id}")
        assert first.status_code == 200
        shown = re.findall(r'<span class="hint">(whd_\w+)</span>', first.text)
        assert len(shown) == 20
        older = html.unescape(re.search(r'href="([^"]+)" rel="next">Older deliveries', first.text).group(1))
        rest = await browser.get(older)
        more = re.findall(r'<span class="hint">(whd_\w+)</span>', rest.text)
        assert shown + more == [d.id for d in everything] and "Older deliveries" not in rest.text
        assert "Newest deliveries" in rest.text
        # A cursor that is another merchant's delivery, or no delivery at all: the first page.
        for cursor in (their_delivery.id, "whd_nothing"):
            again = await browser.get(f"/dashboard/webhooks/{endpoint.id}?starting_after={cursor}")
            assert re.findall(r'<span class="hint">(whd_\w+)</span>', again.text) == shown
