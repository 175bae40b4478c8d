"""Helpers for the embedded widget's browser tests: merchant pages that paste the script tag (served by
the e2e shop on its own origin), the card frame found by its accessible title, and the DOM events the
widget fires, recorded in ``window.flintEvents`` by a listener the page installs before the loader."""
from __future__ import annotations

import html
import json
from typing import Any

from playwright.sync_api import FrameLocator, Page

from .helpers import PAY_BUTTON
from support.shop import page_html

FRAME_TITLE = "Secure card payment"
EVENTS = ("flint:ready", "flint:complete", "flint:fallback", "flint:error")

# Installed before the loader, so no event is missed; events bubble to the document.
RECORDER = """<script>
window.flintEvents = [];
%s.forEach(function (name) {
  document.addEventListener(name, function (event) {
    window.flintEvents.push({type: name, target: event.target.id, detail: event.detail});
  });
});
</script>""" % json.dumps(list(EVENTS))


def script_tag(flint_url: str, client_token: str, target: str | None = "#checkout", **data: str) -> str:
    """The merchant's script tag, exactly as docs/api.md 5 gives it (plus any data-* options)."""
    attrs = {"data-client-token": client_token, **({"data-target": target} if target else {}),
             **{f"data-{name.replace('_', '-')}": value for name, value in data.items()}}
    rendered = " ".join(f'{name}="{html.escape(value)}"' for name, value in attrs.items())
    return f'<script src="{flint_url}/widget/v1/flint.js" {rendered} async></script>'


def merchant_page(title: str, body: str) -> str:
    """A merchant's page: the event recorder first, then ``body`` (widgets, script tags, code)."""
    return page_html(title, RECORDER + body)


def card_frame(page: Page, nth: int = 0) -> FrameLocator:
    return page.frame_locator(f'iframe[title="{FRAME_TITLE}"]').nth(nth)


def fill_card(frame: FrameLocator, number: str, expiry: str = "12 / 34", cvc: str = "123") -> None:
    frame.get_by_role("textbox", name="Card number", exact=True).fill(number)
    frame.get_by_role("textbox", name="Expiry (MM / YY)", exact=True).fill(expiry)
    frame.get_by_role("textbox", name="CVC", exact=True).fill(cvc)


def pay_in_frame(frame: FrameLocator, number: str, expiry: str = "12 / 34", cvc: str = "123") -> None:
    fill_card(frame, number, expiry, cvc)
    frame.get_by_role("button", name=PAY_BUTTON).click()


def events(page: Page, type: str | None = None) -> list[dict[str, Any]]:
    recorded = page.evaluate("() => window.flintEvents || []")
    return [e for e in recorded if type is None or e["type"] == type]


def wait_for_event(page: Page, type: str, count: int = 1, timeout: float = 15_000) -> dict[str, Any]:
    """Waits until ``count`` events of ``type`` were fired; returns the last one."""
    page.wait_for_function("([type, count]) => (window.flintEvents || []).filter(e => e.type === type).length >= count",
                           arg=[type, count], timeout=timeout)
    return events(page, type)[-1]


def window_listeners(page: Page) -> dict[str, int]:
    """The page window's event listeners by type, read through the DevTools protocol (what a leak
    would leave behind after destroy())."""
    cdp = page.context.new_cdp_session(page)
    try:
        window = cdp.send("Runtime.evaluate", {"expression": "window"})["result"]["objectId"]
        listeners = cdp.send("DOMDebugger.getEventListeners", {"objectId": window})["listeners"]
    finally:
        cdp.detach()
    counts: dict[str, int] = {}
    for listener in listeners:
        counts[listener["type"]] = counts.get(listener["type"], 0) + 1
    return counts
