"""The order's timeline tells the whole story (docs/api.md 15): each event with its webhook deliveries (to
which endpoint, delivered, failed or pending, how many attempts, the last response) and the hook calls
made for the order by their time between the events (the app, what its answer came to, how long it took,
why), a page at most TIMELINE_PAGE lines, ``Later events`` reading on from the last event shown.

The service and its two queries on SQLite and PostgreSQL (real webhook receivers and hook servers on
loopback, deliveries sent by Flint's own worker, apps installed through OAuth codes); then the page over
real HTTP from a live ``flint serve`` whose worker retries fast, seeded through the JSON API and an app's
OAuth consent page, read by an owner and by support."""
from __future__ import annotations

import asyncio
import html
import itertools
import json
import re
import secrets
import time
from contextlib import asynccontextmanager
from html.parser import HTMLParser
from types import SimpleNamespace

import httpx
import pytest

from flint.apps import service as apps
from flint.background.webhook_worker import deliver_due
from flint.console import service
from flint.console.service import Viewer
from flint.errors import FlintError
from flint.events.models import Event
from flint.hooks import service as hooks
from flint.hooks import store as hook_store
from flint.hooks.models import HookCall
from flint.merchants import service as merchants
from flint.oauth import service as oauth
from flint.orders import service as orders
from flint.runtime import Runtime
from flint.staff import service as staff
from flint.webhooks import service as webhooks
from flint.webhooks import store as webhook_store
from flint.webhooks.service import Owner
from support import oauth as oauth_steps
from support.factories import make_merchant, make_session, pay_session
from support.receiver import Receiver
from support.server import start_server, stop_server
from tests.conftest import SERVER_BACKEND, fresh_database

PASSWORD = "a long and correct password"
DECLINED = "4000000000000002"
REDIRECT = "http://127.0.0.1:9/callback"
# RFC 7636 appendix B's verifier and its S256 challenge.
VERIFIER = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
CHALLENGE = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
ANNOTATE = b'{"actions": [{"type": "annotate", "data": {"gift": true}}]}'
_counter = itertools.count(1)


@pytest.fixture(scope="module")
def receiver():
    live = Receiver().start()
    yield live
    live.stop()


def _path(name: str) -> str:
    return f"/{name}-{secrets.token_hex(4)}"


# -- seeding through Flint's services ----------------------------------------------------------------------

async def _install(rt: Runtime, app, merchant_id: str) -> str:
    """The app installed on the merchant as the consent page does it: a code for what the page showed,
    exchanged with PKCE. Returns the installation's id."""
    request = oauth.AuthorizationRequest(app, REDIRECT, ["orders:read"], None, CHALLENGE)
    code = await oauth.issue_code(rt, request, merchant_id)
    return (await oauth.exchange_code(rt, app, code, REDIRECT, VERIFIER))["installation_id"]


async def _shop(rt: Runtime, receiver: Receiver, name: str) -> SimpleNamespace:
    """A merchant with three endpoints of its own (one answers 200, one 410: given up, one 500: retrying),
    two installed apps asked before each payment (Gift Notes annotates, with its own webhook_url and an
    endpoint its installation made; Risk Check answers 500), and an order paid at the second attempt, its
    deliveries sent once by Flint's worker."""
    shop, _ = await make_merchant(rt)
    async with rt.db.transaction() as conn:
        owner = await staff.ensure_owner(conn, shop)
    urls = {"ok": receiver.script(_path(f"{name}-ok"), [200]), "gone": receiver.script(_path(f"{name}-gone"), [410]),
            "flaky": receiver.script(_path(f"{name}-flaky"), [500])}
    # The endpoint that answers 410 takes order.created only: its one delivery is given up at once (and the
    # endpoint disabled), whatever order the worker sends in.
    endpoints = {label: (await webhooks.create_endpoint(rt, shop.id, url=url, description=None,
                                                        events=["order.created"] if label == "gone" else ["*"]))[0]
                 for label, url in urls.items()}
    developer, _ = await make_merchant(rt)
    gift, _, _ = await apps.create_app(
        rt, developer.id, name=f"Gift Notes {name}", redirect_uris=[REDIRECT], scopes=["orders:read"],
        hook_url=receiver.script(_path("gift-hook"), [200], body=ANNOTATE), hooks=["checkout.before_payment"],
        webhook_url=receiver.script(_path("gift-events"), [200]) + "?token=app-secret-1", webhook_events=["order.*"])
    risk, _, _ = await apps.create_app(
        rt, developer.id, name=f"Risk Check {name}", redirect_uris=[REDIRECT], scopes=["orders:read"],
        hook_url=receiver.script(_path("risk-hook"), [500]), hooks=["checkout.before_payment"])
    installation = await _install(rt, gift, shop.id)
    await _install(rt, risk, shop.id)
    made, _ = await webhooks.create_endpoint(
        rt, shop.id, url=receiver.script(_path("gift-own"), [200]) + "?token=app-secret-2", events=["order.*"],
        description=None, owner=Owner(installation, gift.id, ("orders:read",)))
    session = await make_session(rt, shop.id)
    assert (await pay_session(rt, session, number=DECLINED)).status == "failed"
    assert (await pay_session(rt, session)).status == "succeeded"
    assert await deliver_due(rt)
    return SimpleNamespace(merchant=shop, owner=owner, endpoints=endpoints, gift=gift, risk=risk, app_endpoint=made,
                           installation=installation, session=session, order_id=session.order_id)


def _viewer(shop, member=None) -> Viewer:
    return Viewer(f"ws_{secrets.token_hex(4)}", shop.merchant, member if member is not None else shop.owner)


async def _support(rt: Runtime, shop):
    _, token = await staff.invite(rt, shop.owner, f"support-{secrets.token_hex(3)}@shop.example", "support")
    return await staff.accept_invitation(rt, token, PASSWORD)


async def _everything(rt: Runtime, who: Viewer, order_id: str) -> list[service.Story]:
    """Every page of the order's timeline, following more_after as ``Later events`` does."""
    pages, after = [], 0
    while True:
        story = await service.order_story(rt, who, order_id, after=after)
        pages.append(story)
        if story.more_after is None:
            return pages
        assert story.more_after > after
        after = story.more_after


async def _times(rt: Runtime, shop) -> dict[str, str]:
    """When each event and hook call of the shop's order was made (to the microsecond), by id."""
    events, _ = await orders.list_order_events(rt, shop.merchant.id, shop.order_id, 0, 1000)
    calls, _ = await hooks.list_calls(rt, shop.merchant.id, shop.order_id, 100, None)
    return {row.id: row.created_at for row in [*events, *calls]}


async def _deliveries_of(rt: Runtime, shop) -> list[tuple[str, str]]:
    """(event id, delivery id) of every delivery of the shop's order's events, as the API lists them."""
    events, _ = await orders.list_order_events(rt, shop.merchant.id, shop.order_id, 0, 1000)
    endpoints = [*shop.endpoints.values(), shop.app_endpoint]
    async with rt.db.read() as conn:  # the app's webhook_url endpoint, which no API lists to the merchant
        app_endpoint = await webhook_store.select_app_endpoint(conn, shop.installation)
    found = []
    for endpoint in [*endpoints, app_endpoint]:
        async with rt.db.read() as conn:
            deliveries, _ = await webhook_store.select_deliveries_page(conn, endpoint.id, 1000, None)
        found += [(d.event_id, d.id) for d in deliveries if d.event_id in {e.id for e in events}]
    return sorted(found)


def _in_time_order(timeline: list[service.Entry], times: dict[str, str]) -> None:
    """Events in sequence order; each hook call after the events made before it and before those made
    after it."""
    events = [entry for entry in timeline if entry.source == "event"]
    assert [e.sequence for e in events] == sorted(e.sequence for e in events)
    for i, entry in enumerate(timeline):
        if entry.source == "hook_call":
            at = times[entry.id]
            assert all(times[e.id] <= at for e in timeline[:i] if e.source == "event"), (entry, timeline)
            assert all(times[e.id] > at for e in timeline[i:] if e.source == "event"), (entry, timeline)


# -- the service, on both backends -------------------------------------------------------------------------

async def test_each_event_shows_its_deliveries_and_the_hook_calls_sit_between_the_events(rt, receiver):
    shop = await _shop(rt, receiver, "a")
    story = await service.order_story(rt, _viewer(shop), shop.order_id)
    assert story.more_after is None and not story.calls_cut and not story.deliveries_cut
    timeline = story.timeline
    _in_time_order(timeline, await _times(rt, shop))
    titles = [entry.title for entry in timeline]
    gift, risk = f"Hook call to app {shop.gift.name}", f"Hook call to app {shop.risk.name}"
    # Both apps are asked at once before each attempt: their two calls, in either order, then the attempt.
    assert titles[:2] == ["Order created", "Checkout session created (embedded)"], titles
    assert sorted(titles[2:4]) == sorted(titles[5:7]) == [gift, risk], titles
    assert titles[4] == "Payment failed" and titles[7:] == ["Payment succeeded", "Order paid",
                                                           "Checkout session completed"], titles

    # The hook calls: the app, its answer in words (never colour alone), how long, why.
    calls, _ = await hooks.list_calls(rt, shop.merchant.id, shop.order_id, 10, None)
    shown = [entry for entry in timeline if entry.source == "hook_call"]
    assert sorted(entry.id for entry in shown) == sorted(call.id for call in calls) and len(calls) == 4
    for entry in shown:
        assert entry.actor == "Flint" and f"Session {shop.session.id}" in entry.details
        assert any(re.fullmatch(r"Took \d+ ms", line) for line in entry.details)
    allowed = [entry for entry in shown if entry.title == gift]
    assert {(e.badge, e.kind) for e in allowed} == {("Allowed", "success")}
    assert all("Applied: annotate" in e.details and "Outcome: allowed" in e.details for e in allowed)
    failed = [entry for entry in shown if entry.title == risk]
    assert {(e.badge, e.kind) for e in failed} == {("Error", "failure")}
    assert all("Reason: HTTP 500" in e.details and "Outcome: error" in e.details for e in failed)

    # Each event's deliveries: the merchant's endpoints by URL with their console page; the app's (its
    # webhook_url, and the endpoint its installation made) as the app, never by URL.
    created = timeline[0]
    by_endpoint = {line.endpoint: line for line in created.deliveries}
    ok, gone, flaky = (shop.endpoints[k] for k in ("ok", "gone", "flaky"))
    assert (by_endpoint[ok.url].status, by_endpoint[ok.url].attempts, by_endpoint[ok.url].last_status_code) == \
        ("delivered", 1, 200)
    assert by_endpoint[ok.url].href == f"/dashboard/webhooks/{ok.id}" and by_endpoint[ok.url].kind == "success"
    assert (by_endpoint[gone.url].status, by_endpoint[gone.url].attempts, by_endpoint[gone.url].last_status_code) == \
        ("failed", 1, 410)
    assert by_endpoint[gone.url].kind == "failure"
    assert (by_endpoint[flaky.url].status, by_endpoint[flaky.url].attempts,
            by_endpoint[flaky.url].last_status_code) == ("pending", 1, 500)
    apps_lines = [line for line in created.deliveries if line.endpoint == f"app {shop.gift.name}"]
    assert len(apps_lines) == 2 and all(line.href is None and line.last_error is None for line in apps_lines)
    assert all(line.status == "delivered" for line in apps_lines)
    assert len(created.deliveries) == 5
    # order.* only: the app's endpoints have no delivery of the session's or the payments' events.
    session_line = timeline[1]
    assert {line.endpoint for line in session_line.deliveries} == {ok.url, flaky.url}
    assert "app-secret" not in repr(story)
    # Every delivery of every event on the page, each once, under its own event.
    assert sorted((entry.id, line.id) for entry in timeline for line in entry.deliveries) == \
        await _deliveries_of(rt, shop)


async def test_another_merchants_deliveries_and_hook_calls_never_show(rt, receiver):
    mine, theirs = await _shop(rt, receiver, "mine"), await _shop(rt, receiver, "theirs")
    story = await service.order_story(rt, _viewer(mine), mine.order_id)
    text = repr(story)
    assert all(endpoint.url not in text for endpoint in theirs.endpoints.values())
    assert theirs.gift.name not in text and theirs.session.id not in text
    # The two queries themselves answer only for the merchant asking.
    events, _ = await orders.list_order_events(rt, mine.merchant.id, mine.order_id, 0, 100)
    async with rt.db.read() as conn:
        assert await webhook_store.select_deliveries_of_events(conn, mine.merchant.id, [e.id for e in events], 100)
        assert await webhook_store.select_deliveries_of_events(conn, theirs.merchant.id, [e.id for e in events],
                                                               100) == []
        assert len(await hook_store.select_order_calls_between(conn, mine.merchant.id, mine.order_id, None, None,
                                                               100)) == 4
        assert await hook_store.select_order_calls_between(conn, theirs.merchant.id, mine.order_id, None, None,
                                                           100) == []
    # And another merchant's order is 404 to this merchant, as an unknown one.
    with pytest.raises(FlintError) as refused:
        await service.order_story(rt, _viewer(mine), theirs.order_id)
    assert refused.value.status == 404


async def test_support_reads_the_same_deliveries_and_hook_calls(rt, receiver):
    shop = await _shop(rt, receiver, "support")
    support = await _support(rt, shop)
    as_owner = await service.order_story(rt, _viewer(shop), shop.order_id)
    as_support = await service.order_story(rt, _viewer(shop, support), shop.order_id)
    assert as_support.timeline == as_owner.timeline
    assert any(entry.source == "hook_call" for entry in as_support.timeline)
    assert any(line.href for entry in as_support.timeline for line in entry.deliveries)


@pytest.mark.parametrize("page", [3, 4, 5])
async def test_pages_hold_at_most_a_page_of_lines_and_show_every_line_once(rt, receiver, monkeypatch, page):
    """Small pages: every event and every hook call on exactly one page, in order, none longer than
    TIMELINE_PAGE lines, each page after the first starting where the last one ended."""
    shop = await _shop(rt, receiver, f"pages{page}")
    session = await make_session(rt, shop.merchant.id, order_id=None)  # another order: never on this one's pages
    await pay_session(rt, session)
    monkeypatch.setattr(service, "TIMELINE_PAGE", page)
    pages = await _everything(rt, _viewer(shop), shop.order_id)
    assert len(pages) > 1 and all(len(story.timeline) <= page for story in pages)
    assert all(len(story.timeline) > 0 for story in pages)
    lines = [entry for story in pages for entry in story.timeline]
    _in_time_order(lines, await _times(rt, shop))
    events, _ = await orders.list_order_events(rt, shop.merchant.id, shop.order_id, 0, 100)
    assert [e.id for e in lines if e.source == "event"] == [e.id for e in events]
    calls, _ = await hooks.list_calls(rt, shop.merchant.id, shop.order_id, 10, None)
    assert sorted(e.id for e in lines if e.source == "hook_call") == sorted(c.id for c in calls)
    assert len(calls) == 4
    assert not any(story.calls_cut for story in pages)
    # Deliveries stay with their event whichever page it is on.
    assert sorted((e.id, line.id) for e in lines for line in e.deliveries) == await _deliveries_of(rt, shop)


async def test_a_cursor_past_the_end_or_out_of_range_reads_nothing(rt, receiver):
    shop = await _shop(rt, receiver, "end")
    for after in (10_000, 2**40):
        story = await service.order_story(rt, _viewer(shop), shop.order_id, after=after)
        assert story.timeline == [] and story.more_after is None
    assert (await service.order_story(rt, _viewer(shop), shop.order_id, after=-3)).timeline[0].title == "Order created"


# -- how a page is cut and how a call is worded (no database) ----------------------------------------------

def _event(sequence: int, at: str) -> Event:
    return Event(id=f"evt_{sequence}", merchant_id="mer_x", order_id="ord_x", sequence=sequence,
                 type="order.created", actor_type="system", actor_id=None, data="{}", created_at=at)


def _call(n: int, at: str, outcome: str = "answered", actions: list | None = None, applied: list | None = None,
          error: str | None = None, status: int | None = 200) -> HookCall:
    return HookCall(id=f"hc_{n}", merchant_id="mer_x", app_id="app_x", installation_id="inst_x", order_id="ord_x",
                    channel="embedded", checkout_session_id="cs_x", payment_link_id=None, outcome=outcome,
                    status_code=status, latency_ms=12, actions=json.dumps(actions or []), ignored="[]",
                    applied=json.dumps(applied or []), error=error, created_at=at)


def _at(second: int) -> str:
    return f"2026-01-01T00:00:{second:02d}.000000Z"


def test_a_page_ends_at_an_event_so_the_next_begins_at_its_time():
    events = [_event(1, _at(1)), _event(2, _at(5)), _event(3, _at(9))]
    calls = [_call(1, _at(2)), _call(2, _at(3)), _call(3, _at(6)), _call(4, _at(10))]
    lines, after, cut = service.timeline_page(events, calls, False, 4)
    # Three events and the two calls before the second: five lines, one too many; so the page ends at the
    # second event's time with the calls up to it.
    assert [line.id for line in lines] == ["evt_1", "hc_1", "hc_2", "evt_2"] and after == 2 and not cut
    # Everything fits: one page, the call after the last event last.
    lines, after, cut = service.timeline_page(events, calls, False, 10)
    assert [line.id for line in lines] == ["evt_1", "hc_1", "hc_2", "evt_2", "hc_3", "evt_3", "hc_4"]
    assert after is None and not cut
    # A call made in the same instant as an event goes after it.
    lines, _, _ = service.timeline_page([_event(1, _at(1))], [_call(1, _at(1))], False, 10)
    assert [line.id for line in lines] == ["evt_1", "hc_1"]


def test_more_calls_between_two_events_than_a_page_holds_are_cut_and_said_so():
    events = [_event(1, _at(30)), _event(2, _at(40))]
    calls = [_call(n, _at(n)) for n in range(1, 6)]  # five calls before the first event
    lines, after, cut = service.timeline_page(events, calls, False, 3)
    assert [line.id for line in lines] == ["hc_1", "hc_2", "evt_1"] and after == 1 and cut
    # With events to come, a page ends at its last event (the next reads on from it).
    lines, after, cut = service.timeline_page(events, calls[:1], True, 10)
    assert [line.id for line in lines] == ["hc_1", "evt_1", "evt_2"] and after == 2 and not cut


@pytest.mark.parametrize("call, badge, reason", [
    (_call(1, _at(1), actions=[{"type": "block", "message": "Too many cards tried"}], applied=["block"]),
     "Blocked", "Reason: Too many cards tried"),
    (_call(1, _at(1), actions=[{"type": "field_error", "field": "vat", "message": "Not a VAT number"}],
           applied=["field_error"]), "Field error", "Reason: vat: Not a VAT number"),
    (_call(1, _at(1), outcome="timeout", error="no answer within 2 s", status=None), "Timed out",
     "Reason: no answer within 2 s"),
    (_call(1, _at(1), outcome="invalid", error="the answer is not JSON"), "Error",
     "Reason: invalid answer: the answer is not JSON"),
    (_call(1, _at(1), outcome="error", error="HTTP 503", status=503, applied=["block (failure mode)"]), "Error",
     "Reason: HTTP 503"),
])
def test_a_hook_calls_outcome_and_reason_in_words(call, badge, reason):
    entry = service.describe_hook_call(call, None)
    assert entry.badge == badge and entry.kind == "failure" and reason in entry.details
    assert entry.title == "Hook call to app app_x" and "Took 12 ms" in entry.details
    if "block (failure mode)" in call.applied:
        assert "The payment was blocked: this app's hooks block payments when they fail" in entry.details


# -- the page over real HTTP -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def timeline_server(tmp_path_factory):
    """A live Flint whose worker polls often and retries twice, a fraction of a second apart: a failing
    endpoint's delivery is given up after three attempts within a second or two."""
    tmp = tmp_path_factory.mktemp("timeline")
    cleanups: list = []
    live = start_server(tmp, {"FLINT_WEBHOOK_RETRY_SCHEDULE": "0.2,0.2", "FLINT_WEBHOOK_POLL_INTERVAL": "0.05"},
                        db_url=fresh_database(SERVER_BACKEND, tmp, cleanups))
    yield live
    stop_server(live)
    for cleanup in cleanups:
        cleanup()


@pytest.fixture
async def live_rt(timeline_server):
    runtime = await Runtime.start(timeline_server.runtime_config())
    yield runtime
    await runtime.stop()


@asynccontextmanager
async def _browser(server):
    async with httpx.AsyncClient(base_url=server.url, follow_redirects=False, timeout=30) as client:
        yield client


async def _sign_in(browser, email: str) -> None:
    page = await browser.get("/login")
    done = await browser.post("/login", data={"csrf_token": oauth_steps.csrf_of(page.text), "email": email,
                                              "password": PASSWORD})
    assert done.status_code == 303, done.text


class _Timeline(HTMLParser):
    """The order page's timeline as a person reads it: each line's classes, title and text, and under an
    event the text and link of each delivery."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.lines: list[dict] = []
        self.inside = False
        self.level = 0  # lists open inside the timeline
        self.what = False
        self.delivery = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "ol" and attrs.get("class") == "timeline":
            self.inside = True
            return
        if not self.inside:
            return
        if tag in ("ul", "ol"):
            self.level += 1
        elif tag == "li" and self.level == 0:
            self.lines.append({"classes": (attrs.get("class") or "").split(), "title": "", "text": "",
                               "deliveries": []})
        elif tag == "li" and "delivery" in (attrs.get("class") or ""):
            self.lines[-1]["deliveries"].append({"text": "", "href": None})
            self.delivery = True
        elif tag == "p" and attrs.get("class") == "what":
            self.what = True
        elif tag == "a" and self.delivery:
            self.lines[-1]["deliveries"][-1]["href"] = attrs.get("href")

    def handle_endtag(self, tag):
        if not self.inside:
            return
        if tag in ("ul", "ol"):
            if self.level == 0:
                self.inside = False
            self.level -= 1
        elif tag == "li":
            self.delivery = False
        elif tag == "p":
            self.what = False

    def handle_data(self, data):
        if not self.inside or not self.lines:
            return
        line = self.lines[-1]
        line["text"] += data
        if self.what:
            line["title"] += data
        if self.delivery:
            line["deliveries"][-1]["text"] += data


def timeline_of(page: str) -> list[dict]:
    parser = _Timeline()
    parser.feed(page)
    for line in parser.lines:
        line["title"] = " ".join(line["title"].split())
        line["text"] = " ".join(line["text"].split())
        for delivery in line["deliveries"]:
            delivery["text"] = " ".join(delivery["text"].split())
    return parser.lines


async def _http_shop(server, rt: Runtime, receiver: Receiver, browser, name: str,
                     sessions_between: int = 0) -> SimpleNamespace:
    """A merchant seeded as a merchant does it: its owner signs in (``browser``), its backend adds two
    endpoints through the API (one answers 500, one 200) and installs Gift Notes (a hook that annotates,
    and a webhook_url) on the consent page; a buyer pays a session through the API, declined once, and
    ``sessions_between`` more sessions are made for the order between the two attempts."""
    n = next(_counter)
    shop, key = await merchants.create_merchant(rt, name=f"Timeline {name} {n}",
                                                email=f"timeline-{name}{n}-{secrets.token_hex(3)}@shop.example",
                                                password=PASSWORD)
    async with rt.db.transaction() as conn:
        owner = await staff.ensure_owner(conn, shop)
    failing, working = _path(f"{name}-failing"), _path(f"{name}-working")
    async with server.async_client(key) as api:
        endpoints = {}
        for label, path, statuses in (("failing", failing, [500]), ("working", working, [200])):
            made = await api.post("/v1/webhook_endpoints", json={"url": receiver.script(path, statuses),
                                                                 "events": ["*"]})
            assert made.status_code == 200, made.text
            endpoints[label] = made.json()
    developer, _ = await merchants.create_merchant(rt, name="Dev", email=f"d{secrets.token_hex(4)}@dev.example",
                                                   password=PASSWORD)
    app_events = _path(f"{name}-app-events")
    app, client_secret, _ = await apps.create_app(
        rt, developer.id, name=f"Gift Notes {name}", redirect_uris=[oauth_steps.REDIRECT], scopes=["orders:read"],
        hook_url=receiver.script(_path("hook"), [200], body=ANNOTATE), hooks=["checkout.before_payment"],
        webhook_url=receiver.script(app_events, [200]), webhook_events=["order.*"])
    await oauth_steps.install(server, browser, app, client_secret, shop.email, scope="orders:read")
    async with server.async_client(key) as api:
        session = (await api.post("/v1/checkout/sessions", json={
            "order": {"currency": "usd", "line_items": [{"name": "Beans", "quantity": 1, "unit_amount": 2400}]},
            "mode": "embedded", "success_url": "https://shop.example/thanks"})).json()
    async with server.async_client(session["client_token"]) as buyer:
        for number, status in ((DECLINED, 402), ("4242 4242 4242 4242", 200)):
            paid = await buyer.post(f"/v1/checkout/sessions/{session['id']}/confirm", json={"card": {
                "number": number, "exp_month": 12, "exp_year": 2034, "cvc": "123"}})
            assert paid.status_code == status, paid.text
            for _ in range(sessions_between if status == 402 else 0):
                await make_session(rt, shop.id, order_id=session["order_id"])
    async with server.async_client(key) as api:
        calls = (await api.get("/v1/hook_calls", params={"order": session["order_id"]})).json()["data"]
    return SimpleNamespace(merchant=shop, key=key, owner=owner, endpoints=endpoints, app=app, session=session,
                           order_id=session["order_id"], calls=calls, failing=failing, app_events=app_events)


async def _settled_page(browser, order_id: str, timeout: float = 30) -> str:
    """The order page once every delivery of its events has its verdict (the failing endpoint's after its
    three attempts)."""
    deadline = time.monotonic() + timeout
    while True:
        page = await browser.get(f"/dashboard/orders/{order_id}")
        assert page.status_code == 200
        lines = timeline_of(page.text)
        deliveries = [d["text"] for line in lines for d in line["deliveries"]]
        if deliveries and not any("Pending" in text for text in deliveries):
            return page.text
        assert time.monotonic() < deadline, deliveries
        await asyncio.sleep(0.2)


async def test_the_order_page_shows_deliveries_and_hook_calls_to_owner_and_support(timeline_server, live_rt,
                                                                                   receiver):
    server = timeline_server
    async with _browser(server) as owner_browser, _browser(server) as other_browser:
        shop = await _http_shop(server, live_rt, receiver, owner_browser, "mine")
        other = await _http_shop(server, live_rt, receiver, other_browser, "theirs")
        page = await _settled_page(owner_browser, shop.order_id)
        await _settled_page(other_browser, other.order_id)
        _, token = await staff.invite(live_rt, shop.owner, f"sup-{secrets.token_hex(3)}@shop.example", "support")
        support = await staff.accept_invitation(live_rt, token, PASSWORD)
        async with _browser(server) as support_browser:
            await _sign_in(support_browser, support.email)
            support_page = await support_browser.get(f"/dashboard/orders/{shop.order_id}")
            assert support_page.status_code == 200
            # Support may read an endpoint's page: the links lead somewhere.
            assert (await support_browser.get(f"/dashboard/webhooks/{shop.endpoints['failing']['id']}")).status_code == 200

    for shown in (page, support_page.text):
        lines = timeline_of(shown)
        titles = [line["title"] for line in lines]
        hook = f"Hook call to app {shop.app.name} Allowed"
        assert titles[:3] == ["Order created", "Checkout session created (embedded)", hook], titles
        assert titles.count(hook) == len(shop.calls) == 2
        assert titles.index("Payment failed Failed") > titles.index(hook)
        assert titles[titles.index("Payment failed Failed") + 1] == hook
        assert titles[titles.index("Payment failed Failed") + 2] == "Payment succeeded Succeeded"
        for call in (line for line in lines if line["title"] == hook):
            assert "hook_call" in call["classes"] and "success" in call["classes"]
            assert re.search(r"Took \d+ ms", call["text"]) and "Applied: annotate" in call["text"]
            assert f"Session {shop.session['id']}" in call["text"]
        created = lines[0]
        failing, working = shop.endpoints["failing"], shop.endpoints["working"]
        by_href = {d["href"]: d["text"] for d in created["deliveries"]}
        assert by_href[f"/dashboard/webhooks/{failing['id']}"] == \
            f"To {failing['url']}: Failed, 3 attempts, last response HTTP 500"
        assert by_href[f"/dashboard/webhooks/{working['id']}"] == \
            f"To {working['url']}: Delivered, 1 attempt, last response HTTP 200"
        assert by_href[None] == f"To app {shop.app.name}: Delivered, 1 attempt, last response HTTP 200"
        assert shop.app_events not in shown  # the app's endpoint by its name, never its URL
        # Every event of the order has the merchant's two deliveries (the app takes order.* only).
        assert all(len(line["deliveries"]) >= 2 for line in lines if "event" in line["classes"])
        # Nothing of the other merchant's.
        assert other.failing not in shown and other.app.name not in shown and other.session["id"] not in shown
    assert timeline_of(page) == timeline_of(support_page.text)


async def test_later_events_pages_through_a_long_story_with_its_hook_calls(timeline_server, live_rt, receiver):
    """More lines than a page holds: the first page holds TIMELINE_PAGE lines, ``Later events`` reads on,
    and every event and hook call is on exactly one of the pages, deliveries under their event."""
    server = timeline_server
    async with _browser(server) as browser:
        # order.created, a session, a hook call and a decline, half a page of sessions more, then the second
        # attempt's hook call and its events, and the other sessions closing as the order is paid.
        shop = await _http_shop(server, live_rt, receiver, browser, "long",
                                sessions_between=service.TIMELINE_PAGE // 2)
        pages, url = [], f"/dashboard/orders/{shop.order_id}"
        while url:
            page = await browser.get(url)
            assert page.status_code == 200
            pages.append(timeline_of(page.text))
            later = re.search(r'<a href="([^"]+)">Later events</a>', page.text)
            url = html.unescape(later.group(1)) if later else None
            assert len(pages) < 5
    assert len(pages) == 2 and len(pages[0]) == service.TIMELINE_PAGE and 0 < len(pages[1]) <= service.TIMELINE_PAGE
    events, _ = await orders.list_order_events(live_rt, shop.merchant.id, shop.order_id, 0, 2 * service.TIMELINE_PAGE)
    lines = [line for page in pages for line in page]
    assert len([line for line in lines if "event" in line["classes"]]) == len(events) > service.TIMELINE_PAGE
    titles = [line["title"] for line in lines]
    hook = f"Hook call to app {shop.app.name} Allowed"
    assert [i for i, title in enumerate(titles) if title == hook] == [2, titles.index("Payment succeeded Succeeded") - 1]
    assert len(shop.calls) == 2
    assert all(line["deliveries"] for line in lines if "event" in line["classes"])
