"""The buyer's side of Flint in a merchant's Playwright tests: the embedded widget's card frame, or the hosted
checkout page, driven by the fields' accessible names and the buttons' roles (docs/api.md 5 and 14), as a
person or a screen reader finds them, never by Flint's internal ids or classes.

``FlintCheckout`` is for Playwright's sync API, ``AsyncFlintCheckout`` its twin for the async API. Playwright
is the merchant's test dependency, not Flint's: only this module imports it, and only when it is imported.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from playwright.async_api import FrameLocator as AsyncFrameLocator
from playwright.async_api import Page as AsyncPage
from playwright.async_api import TimeoutError as AsyncPlaywrightTimeout
from playwright.sync_api import FrameLocator, Page
from playwright.sync_api import TimeoutError as PlaywrightTimeout

# The accessible names Flint gives the fields (docs/api.md 5 and 14), by fill()'s keyword.
CARD = {"card": "Card number", "expiry": "Expiry (MM / YY)", "cvc": "CVC"}
CONTACT = {"email": "Email", "full_name": "Full name", "name": "Full name", "phone": "Phone", "terms": "I agree to the terms"}
ADDRESS = {"country": "Country or region", "address_line1": "Address line 1", "address_line2": "Address line 2",
           "line1": "Address line 1", "line2": "Address line 2", "city": "City", "postal_code": "Postal code",
           "state": "State or province"}
GROUPS = {"billing": "Billing address", "shipping": "Shipping address"}  # billing: see Step
PAY = re.compile(r"^Pay\b")
DEFAULT_TIMEOUT = 15_000  # ms, as Playwright counts: for the widget to become ready

# Installed on the target element (once), then polled: what the widget has said there. The loader fires
# flint:ready on the target, which may have happened before the test looked; then the iframe already
# has the height the frame reported, as the loader sizes it from 420px (widget/src/flint.js) only once
# the frame is ready. Without an iframe, the loader's fallback link or its alert is what is left.
WIDGET_STATE = """(target) => {
  const element = document.querySelector(target);
  if (!element) return null;
  if (!element.__flintKit) {
    const seen = element.__flintKit = {};
    for (const type of ["ready", "fallback", "error", "complete"]) {
      element.addEventListener("flint:" + type, (event) => { seen[type] = event.detail || {}; });
    }
  }
  const seen = element.__flintKit;
  if (seen.fallback) return {state: "fallback", detail: seen.fallback};
  if (seen.ready) return {state: "ready"};
  const frame = element.querySelector("iframe");
  if (frame && frame.style.height && frame.style.height !== "420px") return {state: "ready"};
  if (seen.error) return {state: "error", detail: seen.error};
  if (!frame) {
    const link = element.querySelector("[role=status] a[href]");
    if (link) return {state: "fallback", detail: {url: link.href}};
    const alert = element.querySelector("[role=alert]");
    if (alert) return {state: "error", detail: {message: alert.textContent}};
  }
  return null;
}"""


class WidgetUnavailable(AssertionError):
    """The widget did not become ready: it fell back to the hosted page (``state`` "fallback", ``detail``
    ``{url, reason}``: the page's origin is not allowed, the frame was blocked...), cannot take a payment
    (``state`` "error", ``detail`` ``{code, message}``: the session expired, the order is paid...), or
    said nothing in time (``state`` "timeout": no widget under the target, no script tag...)."""

    def __init__(self, state: str, detail: dict[str, Any]) -> None:
        self.state, self.detail = state, detail
        what = {"fallback": "fell back to the hosted page", "error": "cannot take a payment"}.get(
            state, "did not become ready")
        super().__init__(f"the Flint widget {what}: {detail}")


@dataclass(frozen=True)
class Step:
    """One field to fill: its accessible name, its value, the group it is in (None: anywhere on the form,
    and the only field of that name), or ``first``: the first field of that name (the billing address
    comes before the group "Shipping address", which repeats its names; docs/api.md 14)."""
    label: str | re.Pattern[str]
    value: Any
    group: str | None = None
    first: bool = False


def locate(form: Any, step: Step) -> Any:
    """The step's control on ``form`` (a Page or FrameLocator, sync or async: locators are built alike)."""
    scope = form.get_by_role("group", name=step.group, exact=True) if step.group else form
    exact = {"exact": True} if isinstance(step.label, str) else {}
    control = scope.get_by_label(step.label, **exact)
    return control.first if step.first else control


def plan(fields: dict[str, Any]) -> list[Step]:
    """fill()'s keywords as steps, countries first (a country decides which address fields are shown).

    ``email``, ``full_name``, ``phone``, ``terms`` (True/False); address fields ``country``,
    ``address_line1``, ``address_line2``, ``city``, ``postal_code``, ``state``, bare (the only address on
    the form) or prefixed ``billing_`` / ``shipping_``; any other keyword is a custom field's label with
    "_" for spaces, any case (``gift_message="..."`` fills "Gift message")."""
    steps = []
    for key, value in fields.items():
        if value is None:
            continue
        prefix, _, rest = key.partition("_")
        if key in CONTACT or key in ADDRESS:
            steps.append(Step(CONTACT.get(key) or ADDRESS[key], value))
        elif prefix in GROUPS and rest in ADDRESS:
            billing = prefix == "billing"
            steps.append(Step(ADDRESS[rest], value, group=None if billing else GROUPS[prefix], first=billing))
        else:
            words = key.replace("_", " ").strip()
            steps.append(Step(re.compile(rf"^\s*{re.escape(words)}\s*$", re.IGNORECASE), value))
    return sorted(steps, key=lambda step: step.label != ADDRESS["country"])


def card_steps(card: str | None, expiry: str | None, cvc: str | None) -> list[tuple[str, str]]:
    given = {"card": card, "expiry": expiry, "cvc": cvc}
    return [(CARD[key], value) for key, value in given.items() if value is not None]


# The kind of a labelled control decides how it is set (a select is chosen, a checkbox ticked).
KIND = "(e) => e.tagName === 'SELECT' ? 'select' : (e.type || '').toLowerCase()"


class FlintCheckout:
    """Flint's checkout as the buyer meets it, for Playwright's sync API.

    ``FlintCheckout(page, target="#checkout")`` finds the widget's frame under ``target`` on the merchant's
    page and waits (up to ``timeout`` ms) for the widget's ``flint:ready``; it raises WidgetUnavailable
    if the widget falls back to the hosted page or cannot take a payment. ``FlintCheckout.hosted(page,
    url)`` opens the hosted checkout page instead. Then ``fill(...)``, ``pay()``, ``approve_3ds()``,
    ``deny_3ds()``, ``error_text()``; ``field(name)`` is any field's locator, ``form`` the frame (or page).
    """

    def __init__(self, page: Page, target: str = "#checkout", *, timeout: float = DEFAULT_TIMEOUT,
                 _hosted: bool = False) -> None:
        self.page = page
        self.target = target
        self.form: Page | FrameLocator = page
        if not _hosted:
            self._wait_ready(timeout)
            self.form = page.locator(target).frame_locator("iframe")

    @classmethod
    def hosted(cls, page: Page, url: str) -> FlintCheckout:
        """Opens the hosted checkout page at ``url`` (a session's or payment link's ``url``) in ``page``."""
        page.goto(url)
        return cls(page, _hosted=True)

    def _wait_ready(self, timeout: float) -> None:
        try:
            said = self.page.wait_for_function(WIDGET_STATE, arg=self.target, timeout=timeout).json_value()
        except PlaywrightTimeout:
            said = {"state": "timeout", "detail": {"target": self.target, "timeout_ms": timeout}}
        if said["state"] != "ready":
            raise WidgetUnavailable(said["state"], said.get("detail") or {})

    def field(self, name: str | re.Pattern[str], group: str | None = None):
        """The control labelled ``name`` (exactly; or a pattern), inside the group named ``group`` if given."""
        return locate(self.form, Step(name, None, group))

    def fill(self, card: str | None = "4242 4242 4242 4242", expiry: str | None = "12 / 34", cvc: str | None = "123",
             **fields: Any) -> FlintCheckout:
        """Types the buyer's details (see ``plan`` for the keywords), then the card; None leaves one out."""
        for step in plan(fields):
            control = locate(self.form, step)
            kind = control.evaluate(KIND)
            if kind == "select":
                control.select_option(str(step.value))
            elif kind == "checkbox":
                control.set_checked(bool(step.value))
            else:
                control.fill(str(step.value))
        for label, value in card_steps(card, expiry, cvc):
            self.form.get_by_role("textbox", name=label, exact=True).fill(value)
        return self

    def pay(self) -> None:
        """Clicks the Pay button. Assert on what follows: the page the buyer lands on, ``error_text()``,
        a 3-D Secure step, or the webhook (``flint_webhooks.wait_for("order.paid")``)."""
        self.form.get_by_role("button", name=PAY).click()

    def approve_3ds(self) -> None:
        """Approves the 3-D Secure check (test card 4000 0027 6000 3184), once it is shown."""
        self.form.get_by_role("button", name="Approve", exact=True).click()

    def deny_3ds(self) -> None:
        """Denies the 3-D Secure check: the payment fails with ``authentication_failed``."""
        self.form.get_by_role("button", name="Deny", exact=True).click()

    def error_text(self, timeout: float = DEFAULT_TIMEOUT) -> str:
        """What the buyer is told went wrong, once it is shown: the form's alert (a declined card), else the
        messages of the fields marked invalid (a mistyped card number), one per line."""
        alert = self.form.get_by_role("alert").filter(has_text=re.compile(r"\S"))
        invalid = self.form.locator("[aria-invalid=true]")
        alert.or_(invalid).first.wait_for(timeout=timeout)
        if alert.count():
            return alert.first.inner_text().strip()
        return "\n".join(self._field_error(control) for control in invalid.all())

    def _field_error(self, control) -> str:
        return control.evaluate(FIELD_ERROR)


# A field's message: the elements its aria-describedby names that hold an error (not the hint).
FIELD_ERROR = """(e) => (e.getAttribute("aria-describedby") || "").split(/\\s+/)
  .map((id) => id && e.ownerDocument.getElementById(id)).filter((n) => n && !n.hidden && n.id.endsWith("-error"))
  .map((n) => n.textContent.trim()).join(" ")"""


class AsyncFlintCheckout:
    """FlintCheckout's twin for Playwright's async API: ``checkout = await AsyncFlintCheckout(page)`` (or
    ``await AsyncFlintCheckout.hosted(page, url)``), then the same methods, awaited."""

    def __init__(self, page: AsyncPage, target: str = "#checkout", *, timeout: float = DEFAULT_TIMEOUT,
                 _hosted: bool = False) -> None:
        self.page = page
        self.target = target
        self.form: AsyncPage | AsyncFrameLocator = page
        self._timeout = timeout
        self._hosted = _hosted

    def __await__(self):
        return self._ready().__await__()

    async def _ready(self) -> AsyncFlintCheckout:
        if not self._hosted:
            try:
                said = await (await self.page.wait_for_function(WIDGET_STATE, arg=self.target,
                                                                timeout=self._timeout)).json_value()
            except AsyncPlaywrightTimeout:
                said = {"state": "timeout", "detail": {"target": self.target, "timeout_ms": self._timeout}}
            if said["state"] != "ready":
                raise WidgetUnavailable(said["state"], said.get("detail") or {})
            self.form = self.page.locator(self.target).frame_locator("iframe")
        return self

    @classmethod
    async def hosted(cls, page: AsyncPage, url: str) -> AsyncFlintCheckout:
        await page.goto(url)
        return await cls(page, _hosted=True)

    def field(self, name: str | re.Pattern[str], group: str | None = None):
        return locate(self.form, Step(name, None, group))

    async def fill(self, card: str | None = "4242 4242 4242 4242", expiry: str | None = "12 / 34",
                   cvc: str | None = "123", **fields: Any) -> AsyncFlintCheckout:
        for step in plan(fields):
            control = locate(self.form, step)
            kind = await control.evaluate(KIND)
            if kind == "select":
                await control.select_option(str(step.value))
            elif kind == "checkbox":
                await control.set_checked(bool(step.value))
            else:
                await control.fill(str(step.value))
        for label, value in card_steps(card, expiry, cvc):
            await self.form.get_by_role("textbox", name=label, exact=True).fill(value)
        return self

    async def pay(self) -> None:
        await self.form.get_by_role("button", name=PAY).click()

    async def approve_3ds(self) -> None:
        await self.form.get_by_role("button", name="Approve", exact=True).click()

    async def deny_3ds(self) -> None:
        await self.form.get_by_role("button", name="Deny", exact=True).click()

    async def error_text(self, timeout: float = DEFAULT_TIMEOUT) -> str:
        alert = self.form.get_by_role("alert").filter(has_text=re.compile(r"\S"))
        invalid = self.form.locator("[aria-invalid=true]")
        await alert.or_(invalid).first.wait_for(timeout=timeout)
        if await alert.count():
            return (await alert.first.inner_text()).strip()
        return "\n".join([await control.evaluate(FIELD_ERROR) for control in await invalid.all()])
