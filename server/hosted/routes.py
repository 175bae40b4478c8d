"""Hosted buyer pages: the checkout page at a session's `url`, the 3-D Secure challenge and the
receipt. Plain HTML forms that work with JavaScript off; they call the same confirm service as
the widget. Every state has its own honest page and status code."""
from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit, urlunsplit

from quart import Blueprint, Response, g, redirect, request

from flint import i18n, money, urls
from flint.actors import Actor
from flint.http.auth import public
from flint.http.context import runtime
from flint.checkout import service as checkout
from flint.checkout import store as session_store
from flint.checkout.models import CheckoutSession
from flint.links import service as links
from flint.links import store as link_store
from flint.links.models import PaymentLink
from flint.errors import FlintError
from flint.merchants import store as merchant_store
from flint.merchants.models import Merchant
from flint.orders import store as order_store
from flint.orders.models import Order
from flint.payments import service as payments
from flint.payments import store as payment_store
from flint.cards import parse_card
from flint.payments.models import FAILED, REQUIRES_ACTION, SUCCEEDED, Payment
from flint.processors import FAILURE_MESSAGES
from flint.proxies import client_address, parse_networks
from flint.runtime import Runtime
from flint.widget import assets
from flint.forms import service as forms
from flint.http import pages as templates
from flint.forms import store as form_store

bp = Blueprint("hosted", __name__)


@dataclass
class Visit:
    """A buyer on a hosted page: of a checkout session (``/checkout/{id}``) or of a payment link
    (``/pay/{id}``). Both show the same form and pay through the same confirm service."""
    order: Order
    merchant: Merchant
    session: CheckoutSession | None = None
    link: PaymentLink | None = None

    @property
    def subject_id(self) -> str:  # what form tokens are bound to
        return self.session.id if self.session else self.link.id  # type: ignore[union-attr]

    @property
    def base_path(self) -> str:
        return f"/checkout/{self.session.id}" if self.session else f"/pay/{self.link.id}"  # type: ignore[union-attr]

    @property
    def cancel_url(self) -> str | None:
        return self.session.cancel_url if self.session else None

    def attempt(self, address: str) -> payments.Attempt:
        if self.session is not None:
            return payments.Attempt(merchant_id=self.session.merchant_id, order_id=self.order.id, channel="hosted",
                                    checkout_session_id=self.session.id, client_address=address)
        assert self.link is not None
        return payments.Attempt(merchant_id=self.link.merchant_id, order_id=self.order.id, channel="payment_link",
                                payment_link_id=self.link.id, client_address=address)

    def check_payable(self) -> None:
        """The channel's own rule (the confirm path applies the same one)."""
        if self.session is not None:
            checkout.check_session_payable(self.session, self.order.status)
        else:
            assert self.link is not None
            links.check_link_payable(self.link, self.order.status)

    def success_location(self) -> str:
        # A session goes back to the merchant's success_url; a link has none: its own receipt.
        return success_location(self.session) if self.session else f"{self.base_path}/receipt"

    def owns(self, payment: Payment) -> bool:
        if self.session is not None:
            return payment.checkout_session_id == self.session.id
        return self.link is not None and payment.payment_link_id == self.link.id


async def _load(rt: Runtime, session_id: str) -> Visit:
    async with rt.db.read() as conn:
        session = await session_store.select_session_by_id(conn, session_id)
        if session is None:
            raise FlintError(404, "checkout_not_found", "No such checkout.")
        order = await order_store.select_order_by_id(conn, session.order_id)
        merchant = await merchant_store.select_merchant(conn, session.merchant_id)
    assert order is not None and merchant is not None
    return Visit(order, merchant, session=session)


async def _load_link(rt: Runtime, link_id: str) -> Visit:
    async with rt.db.read() as conn:
        link = await link_store.select_link_by_id(conn, link_id)
        if link is None:
            raise FlintError(404, "payment_link_not_found", "No such payment link.")
        order = await order_store.select_order_by_id(conn, link.order_id)
        merchant = await merchant_store.select_merchant(conn, link.merchant_id)
    assert order is not None and merchant is not None
    return Visit(order, merchant, link=link)


async def _reload(rt: Runtime, visit: Visit) -> Visit:
    return await _load(rt, visit.session.id) if visit.session else await _load_link(rt, visit.subject_id)


async def _paid_with(rt: Runtime, order: Order) -> Payment | None:
    async with rt.db.read() as conn:
        return await payment_store.select_succeeded_payment_of_order(conn, order.id)


def _money(amount: int, currency: str) -> str:
    return money.format_amount(amount, currency, g.locale)


def _form_origins(visit: Visit) -> list[str]:
    origins = []
    for url in ((visit.session.success_url, visit.session.cancel_url) if visit.session else ()):
        if url:
            try:
                # Rebuilt from the parsed scheme, host and port: never the text as written, which
                # could carry a ';' and a directive of its own into the policy.
                origins.append(urls.origin(url))
            except FlintError:
                continue  # a URL stored before today's rules: no source for it, its redirect is blocked
    return origins


async def _render(template: str, visit: Visit | None, status: int = 200, **context) -> Response:
    if visit is not None:
        # CSP form-action also governs where a form's redirect may land (Chrome enforces it).
        g.form_origins = _form_origins(visit)
        context.update(visit=visit, merchant=visit.merchant, order=visit.order,
                       line_items=visit.order.to_dict()["line_items"])
    body = templates.render(template, money=_money, **context)
    return Response(body, status=status, content_type="text/html; charset=utf-8")


def success_location(session: CheckoutSession) -> str:
    """success_url with the session id: in place of {CHECKOUT_SESSION_ID}, or as a parameter."""
    if "{CHECKOUT_SESSION_ID}" in session.success_url:
        return session.success_url.replace("{CHECKOUT_SESSION_ID}", session.id)
    parts = urlsplit(session.success_url)
    query = (parts.query + "&" if parts.query else "") + urlencode({"session_id": session.id})
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))


# Closed channels: which honest page each code gets (a paid order shows its receipt instead).
_STATES = {"order_canceled": "canceled", "payment_link_inactive": "link_inactive",
           "payment_link_expired": "link_expired"}
CLOSED_CODES = ("order_already_paid", "order_canceled", "session_expired", "session_not_open",
                "payment_link_inactive", "payment_link_expired")


async def _state_page(rt: Runtime, visit: Visit) -> Response | None:
    """The honest page for a checkout or link that cannot take a payment, or None if it can.
    Whether it can is the channel's rule (the one the confirm path applies); this picks the page."""
    try:
        visit.check_payable()
    except FlintError as closed:
        if closed.code == "order_already_paid":
            return await _render("checkout/receipt.html", visit, 200, payment=await _paid_with(rt, visit.order),
                                 already_paid=True)
        return await _render("checkout/state.html", visit, 410, state=_STATES.get(closed.code, "expired"))
    return None


async def _checkout_page(rt: Runtime, visit: Visit, status: int = 200, error: str | None = None,
                         fields: dict | None = None) -> Response:
    return await _render("checkout/page.html", visit, status, form_token=forms.issue(rt, visit.subject_id),
                         error=error, fields=fields or {})


async def _show(rt: Runtime, visit: Visit) -> Response:
    if (page := await _state_page(rt, visit)) is not None:
        return page
    error = request.args.get("error")
    message = _MESSAGES.get(error) if error else None
    return await _checkout_page(rt, visit, 200, error=message)


@bp.get("/checkout/<session_id>")
@public
async def get_checkout(session_id: str):
    rt = runtime()
    return await _show(rt, await _load(rt, session_id))


@bp.get("/pay/<link_id>")
@public
async def get_link_page(link_id: str):
    """A payment link's page: the hosted checkout form for the link's order (and nothing else)."""
    rt = runtime()
    return await _show(rt, await _load_link(rt, link_id))


_EXPIRY = re.compile(r"^\s*(\d{1,2})\s*/?\s*(\d{2}|\d{4})\s*$")


def _card_from(form) -> tuple:
    match = _EXPIRY.match(form.get("expiry", ""))
    if not match:
        raise FlintError(400, "invalid_expiry_month", "Enter the expiry date as MM / YY.", param="card.exp_month")
    return parse_card(form.get("card_number", ""), int(match.group(1)), int(match.group(2)), form.get("cvc", "").strip())


async def _spend_form(rt: Runtime, visit: Visit, form) -> tuple[str | None, Response | None]:
    """Check and spend the form token: (nonce, None) when fresh, (None, response) otherwise."""
    nonce = forms.check(rt, form.get("form_token"), visit.subject_id)
    async with rt.db.transaction() as conn:
        earlier = await forms.spend(conn, nonce, visit.subject_id)
    if earlier is None:
        return nonce, None
    # The same form again (a double click, a resubmitted page, a replay): refused, never run
    # twice; the page links to where the first submission went.
    return None, await _render("checkout/state.html", visit, 409, state="submitted",
                               outcome_url=earlier.get("outcome_url"))


def _wait_text(minutes: int) -> str:
    """When to try again, in the buyer's language and plural."""
    translated = i18n.translations(g.get("locale", "en")).ngettext(*_TOO_MANY_ATTEMPTS, minutes)
    return translated.replace("%(count)s", str(minutes))


async def _limited_page(visit: Visit, refused: FlintError) -> Response:
    """Card testing limit (API.md 13): a 429 page that says when to try again, with the way back to
    the form (no payment was attempted, so nothing was charged)."""
    retry_after = refused.headers.get("Retry-After", "60")
    minutes = max(1, -(-int(retry_after) // 60))  # whole minutes, rounded up: never too early
    page = await _render("checkout/too_many_attempts.html", visit, 429, message=_wait_text(minutes))
    page.headers["Retry-After"] = retry_after
    return page


async def _remember(rt: Runtime, nonce: str, url: str) -> None:
    async with rt.db.transaction() as conn:
        await form_store.record_outcome(conn, nonce, url)


async def _pay(rt: Runtime, visit: Visit) -> Response:
    form = await request.form
    nonce, answered = await _spend_form(rt, visit, form)
    if answered is not None:
        return answered
    if (page := await _state_page(rt, visit)) is not None:
        return page
    kept = {"email": form.get("email", "")[:254], "name": form.get("name", "")[:200]}
    try:
        card = _card_from(form)
        buyer = Actor("buyer", visit.subject_id)
        address = client_address(request.remote_addr, request.headers.get("X-Forwarded-For"),
                                 parse_networks(rt.config.trusted_proxies))
        payment = await asyncio.shield(payments.confirm_payment(rt, visit.attempt(address), card, buyer))
    except FlintError as error:
        if error.code in CLOSED_CODES:
            return await _state_page(rt, await _reload(rt, visit)) or await _checkout_page(rt, visit)
        if error.code == "too_many_attempts":
            return await _limited_page(visit, error)
        status = {400: 400, 402: 402, 409: 409, 503: 503}.get(error.status, 400)
        return await _checkout_page(rt, visit, status, error=_MESSAGES.get(error.code, error.detail), fields=kept)
    if payment.status == SUCCEEDED:
        location = visit.success_location()
    elif payment.status == REQUIRES_ACTION:
        location = f"{visit.base_path}/challenge/{payment.id}"
    else:
        assert payment.status == FAILED
        return await _checkout_page(rt, visit, 402, error=payment.failure_message, fields=kept)
    assert nonce is not None
    await _remember(rt, nonce, location)
    return redirect(location, 303)


@bp.post("/checkout/<session_id>")
@public
async def post_checkout(session_id: str):
    rt = runtime()
    return await _pay(rt, await _load(rt, session_id))


@bp.post("/pay/<link_id>")
@public
async def post_link_page(link_id: str):
    rt = runtime()
    return await _pay(rt, await _load_link(rt, link_id))


async def _challenge_payment(rt: Runtime, visit: Visit, payment_id: str) -> Payment:
    async with rt.db.read() as conn:
        payment = await payment_store.select_payment(conn, visit.order.merchant_id, payment_id)
    if payment is None or not visit.owns(payment):
        raise FlintError(404, "checkout_not_found", "No such checkout.")
    return payment


async def _show_challenge(rt: Runtime, visit: Visit, payment_id: str) -> Response:
    payment = await _challenge_payment(rt, visit, payment_id)
    if payment.status != REQUIRES_ACTION:
        return redirect(visit.base_path, 303)
    return await _render("checkout/challenge.html", visit, 200, payment=payment,
                         form_token=forms.issue(rt, visit.subject_id))


async def _answer_challenge(rt: Runtime, visit: Visit, payment_id: str) -> Response:
    payment = await _challenge_payment(rt, visit, payment_id)
    form = await request.form
    nonce, answered = await _spend_form(rt, visit, form)
    if answered is not None:
        return answered
    approved = form.get("action") == "approve"
    try:
        done = await asyncio.shield(payments.resolve_challenge(
            rt, visit.order.merchant_id, payment.id, approved, Actor("buyer", visit.subject_id),
            checkout_session_id=visit.session.id if visit.session else None))
    except FlintError as error:
        location = f"{visit.base_path}?" + urlencode({"error": error.code})
    else:
        # Back to where this channel's buyer came from: the merchant's success page, or the form.
        location = (visit.success_location() if done.status == SUCCEEDED
                    else f"{visit.base_path}?" + urlencode({"error": done.failure_code or "payment_failed"}))
    assert nonce is not None
    await _remember(rt, nonce, location)
    return redirect(location, 303)


@bp.get("/checkout/<session_id>/challenge/<payment_id>")
@public
async def get_challenge(session_id: str, payment_id: str):
    rt = runtime()
    return await _show_challenge(rt, await _load(rt, session_id), payment_id)


@bp.post("/checkout/<session_id>/challenge/<payment_id>")
@public
async def post_challenge(session_id: str, payment_id: str):
    rt = runtime()
    return await _answer_challenge(rt, await _load(rt, session_id), payment_id)


@bp.get("/pay/<link_id>/challenge/<payment_id>")
@public
async def get_link_challenge(link_id: str, payment_id: str):
    rt = runtime()
    return await _show_challenge(rt, await _load_link(rt, link_id), payment_id)


@bp.post("/pay/<link_id>/challenge/<payment_id>")
@public
async def post_link_challenge(link_id: str, payment_id: str):
    rt = runtime()
    return await _answer_challenge(rt, await _load_link(rt, link_id), payment_id)


async def _receipt(rt: Runtime, visit: Visit) -> Response:
    payment = await _paid_with(rt, visit.order)
    if payment is None:
        return redirect(visit.base_path, 303)
    return await _render("checkout/receipt.html", visit, 200, payment=payment, already_paid=False)


@bp.get("/checkout/<session_id>/receipt")
@public
async def get_receipt(session_id: str):
    rt = runtime()
    return await _receipt(rt, await _load(rt, session_id))


@bp.get("/pay/<link_id>/receipt")
@public
async def get_link_receipt(link_id: str):
    rt = runtime()
    return await _receipt(rt, await _load_link(rt, link_id))


@bp.get("/widget/v1/frame/<session_id>")
@public
async def get_card_frame(session_id: str):
    """The embedded widget's card frame (API.md 5): the hosted card form and confirm path in an
    iframe on the merchant's page. Only the merchant's registered origins may frame it."""
    rt = runtime()
    visit = await _load(rt, session_id)
    # Set before anything can fail, so even an error page here is framable only by the merchant.
    g.frame_ancestors = visit.merchant.origins
    unavailable = None
    try:
        checkout.check_session_payable(visit.session, visit.order.status)
    except FlintError as closed:
        unavailable = {"code": closed.code, "message": _translate(closed.detail)}
    script = assets.asset("frame.js")
    frame_config = {
        "session": visit.session.id,
        "origins": visit.merchant.origins,  # the frame checks its parent against these itself too
        "confirmUrl": f"/v1/checkout/sessions/{visit.session.id}/confirm",
        "challengeUrl": f"/v1/checkout/sessions/{visit.session.id}/challenge",
        "successUrl": success_location(visit.session),
        "amount": _money(visit.order.amount_total - visit.order.amount_paid, visit.order.currency),
        "unavailable": unavailable,
        "messages": _frame_messages(),
    }
    return await _render("embed/frame.html", visit, 200, form_token=forms.issue(rt, visit.session.id),
                         error=None, fields={}, frame_config=frame_config,
                         hosted_url=visit.session.hosted_url(rt.config.public_url),
                         frame_script={"url": script.versioned_path, "integrity": script.integrity})


def _translate(text: str) -> str:
    return i18n.translations(g.get("locale", "en")).gettext(text)


def _frame_messages() -> dict[str, str]:
    """Every text the frame's script may show, in the buyer's language: decline and error codes
    (as the confirm API answers them) and its own inline validation."""
    texts = {**FAILURE_MESSAGES, **_MESSAGES, **_FRAME_TEXTS}
    messages = {code: _translate(text) for code, text in texts.items()}
    # too_many_attempts names a number of minutes: the frame gets the singular and the plural with
    # "%(count)s" left in and picks by the count (n = 1 is the singular in en, de and fr alike).
    translations = i18n.translations(g.get("locale", "en"))
    messages["too_many_attempts_one"] = translations.ngettext(*_TOO_MANY_ATTEMPTS, 1)
    messages["too_many_attempts_other"] = translations.ngettext(*_TOO_MANY_ATTEMPTS, 2)
    return messages


def _(text: str) -> str:
    return text  # marks texts for extraction; the templates translate them


# Buyer-facing wording for codes (translated in the templates via gettext).
_MESSAGES = {
    "authentication_failed": _("We could not authenticate your payment. Please try another card."),
    "authentication_abandoned": _("The card check was not completed. Please try again."),
    "payment_attempt_expired": _("The card check took too long. Please try again."),
    "payment_in_progress": _("A payment for this order is already in progress. Please wait a moment."),
    "processor_unavailable": _("We could not reach the card network. You will not be charged for this attempt; please try again in a minute."),
    "invalid_card_number": _("Your card number is not valid."),
    "invalid_expiry_month": _("Enter the expiry date as MM / YY."),
    "invalid_expiry_year": _("Your card's expiry date is in the past or not valid."),
    "invalid_cvc": _("Your card's security code is not valid."),
    "payment_failed": _("The payment failed. Please try another card."),
}


# The card frame's own texts (server/hosted/routes.py get_card_frame hands them to frame.js).
_FRAME_TEXTS = {
    "card_number_incomplete": _("Your card number is incomplete."),
    "expiry_incomplete": _("Enter the expiry date as MM / YY."),
    "expiry_past": _("Your card's expiry date is in the past."),
    "cvc_incomplete": _("Your card's security code is incomplete."),
    "paid": _("Payment complete. Thank you!"),
    "network_error": _("We could not reach Flint. Check your connection and try again."),
    "challenge_text": _("Your bank asks you to confirm this payment of {amount} with your card ending in {last4}."),
    "client_token_expired": _("This checkout has expired. Please start again."),
    "client_token_invalid": _("This checkout link is not valid."),
    "session_expired": _("This checkout has expired. Please start again."),
    "order_already_paid": _("This order has already been paid."),
    "order_canceled": _("This order was canceled."),
    "session_not_open": _("This checkout is closed."),
}

# Past a card testing limit (plural-aware: ngettext with the number of minutes as "%(count)s").
_TOO_MANY_ATTEMPTS = ("Too many payment attempts. Please try again in %(count)s minute.",
                      "Too many payment attempts. Please try again in %(count)s minutes.")
