"""The loader's own words and states in real Chromium: the texts it shows come from Flint in the buyer's
language (the client session's ``messages``), with a built-in English stand-in when Flint cannot be
reached; its state changes only along its transition table, and the card frame's likewise, so a late
answer for a widget replaced meanwhile, or a second Pay while the first is on its way, changes nothing."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from .widget import card_frame, events, fill_card, merchant_page, script_tag, wait_for_event

SUCCESS = "4242 4242 4242 4242"
GERMAN = pytest.mark.browser_context_args(locale="de-DE")  # Chromium sends Accept-Language: de-DE


@pytest.fixture
def embedded(create_checkout_session):
    return create_checkout_session(mode="embedded")


def open_widget(page: Page, shop, server, session, path: str, **data: str) -> None:
    page.goto(shop.serve(path, merchant_page("Checkout", '<div id="checkout"></div>' +
                                             script_tag(server.url, session["client_token"], **data))))


def mount_twice(shop, server, token: str, path: str) -> str:
    """A single-page app that mounts on the same element twice in one go: the second mount destroys
    the first widget while its client-session answer is still on its way."""
    return shop.serve(path, merchant_page("Twice", f"""<div id="checkout"></div>
<script src="{server.url}/widget/v1/flint.js"></script>
<script>
window.handles = Promise.all([
  Flint.mount('#checkout', {{clientToken: {token!r}, redirect: false}}),
  Flint.mount('#checkout', {{clientToken: {token!r}, redirect: false}}),
]);
</script>"""))


# -- the buyer's language ---------------------------------------------------------------------------

@GERMAN
def test_the_fallback_link_is_in_the_buyers_language(page: Page, shop, server, embedded):
    # The frame's requests never answer: the ready timeout sends the buyer to the hosted page.
    page.route(re.compile(r".*/widget/v1/frame/.*"), lambda route: None)
    open_widget(page, shop, server, embedded, "/de-fallback", ready_timeout="3000")
    expect(page.locator('iframe[title="Sichere Kartenzahlung"]')).to_have_count(1)
    fallback = wait_for_event(page, "flint:fallback")
    assert fallback["detail"] == {"url": embedded["url"], "reason": "timeout"}
    link = page.get_by_role("link", name="Weiter zur sicheren Bezahlseite", exact=True)
    expect(link).to_have_attribute("href", embedded["url"])
    expect(page.locator("#checkout [role=status]")).to_have_text(
        "Das Zahlungsformular konnte hier nicht geladen werden. Weiter zur sicheren Bezahlseite")


@GERMAN
def test_a_closed_session_is_explained_in_the_buyers_language(page: Page, shop, server, merchant, embedded):
    assert merchant.api.post(f"/v1/checkout/sessions/{embedded['id']}/expire").status_code == 200
    open_widget(page, shop, server, embedded, "/de-expired")
    error = wait_for_event(page, "flint:error")
    text = "Dieser Bezahlvorgang ist abgelaufen. Bitte beginnen Sie erneut."
    assert error["detail"] == {"code": "session_expired", "message": text}
    expect(page.locator("#checkout [role=alert]")).to_have_text(text)
    expect(page.locator("iframe")).to_have_count(0)


@GERMAN
def test_without_an_answer_from_flint_the_loader_falls_back_on_its_own_english(page: Page, shop, server, embedded):
    page.route(re.compile(r".*/v1/checkout/sessions/client$"), lambda route: route.abort("internetdisconnected"))
    open_widget(page, shop, server, embedded, "/offline")
    error = wait_for_event(page, "flint:error")
    assert error["detail"] == {"code": "network_error", "message": "Flint could not be reached."}
    expect(page.locator("#checkout [role=alert]")).to_have_text("Flint could not be reached.")
    expect(page.locator("iframe")).to_have_count(0)


# -- the transition tables --------------------------------------------------------------------------

def test_a_widget_destroyed_while_loading_never_frames(page: Page, shop, server, embedded):
    page.goto(mount_twice(shop, server, embedded["client_token"], "/twice"))
    wait_for_event(page, "flint:ready")
    # The first widget's answer arrived after its destroy: "frame" is not allowed from destroyed.
    assert page.evaluate("async () => (await window.handles).map((handle) => handle.state)") == ["destroyed", "ready"]
    page.wait_for_timeout(300)
    expect(page.locator("#checkout iframe")).to_have_count(1)
    assert len([frame for frame in page.frames if "/widget/v1/frame/" in frame.url]) == 1
    assert len(events(page, "flint:ready")) == 1
    # destroy() from ready, then again: the second is not in the table and fires nothing.
    page.evaluate("async () => { const [, handle] = await window.handles; handle.destroy(); handle.destroy(); }")
    assert page.evaluate("async () => (await window.handles).map((handle) => handle.state)") == ["destroyed", "destroyed"]
    expect(page.locator("#checkout iframe")).to_have_count(0)
    assert [e["type"] for e in events(page)] == ["flint:ready"]


def test_a_widget_destroyed_while_loading_never_reports_an_error(page: Page, shop, server, embedded):
    token = embedded["client_token"][:-3] + ("AAA" if not embedded["client_token"].endswith("AAA") else "BBB")
    page.goto(mount_twice(shop, server, token, "/twice-bad"))
    wait_for_event(page, "flint:error")
    assert page.evaluate("async () => (await window.handles).map((handle) => handle.state)") == ["destroyed", "error"]
    page.wait_for_timeout(300)
    assert [(e["type"], e["detail"]["code"]) for e in events(page)] == [("flint:error", "client_token_invalid")]
    expect(page.locator("#checkout [role=alert]")).to_have_count(1)


def test_a_second_pay_while_the_first_is_on_its_way_sends_nothing(page: Page, shop, server, merchant, embedded):
    open_widget(page, shop, server, embedded, "/pay-twice", redirect="false")
    wait_for_event(page, "flint:ready")
    confirms: list[str] = []
    page.on("request", lambda request: confirms.append(request.method) if request.url.endswith("/confirm") else None)
    fill_card(card_frame(page), SUCCESS)
    frame = page.frame(url=re.compile(r"/widget/v1/frame/"))
    assert frame is not None
    # Two submits in one task: the second finds the frame "paying", where "pay" is not allowed.
    frame.evaluate("() => { const form = document.getElementById('card-form'); form.requestSubmit(); form.requestSubmit(); }")
    wait_for_event(page, "flint:complete")
    assert confirms == ["POST"]
    payments = merchant.api.get("/v1/payments", params={"order": embedded["order_id"]}).json()["data"]
    assert [p["status"] for p in payments] == ["succeeded"]
