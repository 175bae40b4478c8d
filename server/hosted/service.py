"""The hosted pages' work, without HTTP: a buyer's visit (of a checkout session or a payment link),
loading it, paying it through the one confirm path, the 3-D Secure answer, and the single-use form
tokens. The routes (routes.py) choose the page to show; this module decides nothing about HTML."""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit, urlunsplit

from flint import clock, urls
from flint.actors import Actor
from flint.buyers import service as buyers
from flint.cards import Card, check_card
from flint.checkout import service as checkout
from flint.checkout import store as session_store
from flint.checkout.models import CheckoutSession
from flint.collect import details
from flint.collect import service as collect
from flint.collect.models import Attempt
from flint.errors import FlintError
from flint.forms import service as forms
from flint.links import service as links
from flint.links import store as link_store
from flint.links.models import PaymentLink
from flint.merchants import store as merchant_store
from flint.merchants.models import Merchant
from flint.orders import store as order_store
from flint.orders.models import Order
from flint.payments import store as payment_store
from flint.payments.models import Payment
from flint.runtime import Runtime


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

    def attempt(self, address: str, locale: str | None = None) -> Attempt:
        if self.session is not None:
            return Attempt.for_session(self.session, channel="hosted", client_address=address, locale=locale)
        assert self.link is not None
        return Attempt.for_link(self.link, client_address=address, locale=locale)

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


def success_location(session: CheckoutSession) -> str:
    """success_url with the session id: in place of {CHECKOUT_SESSION_ID}, or as a parameter."""
    if "{CHECKOUT_SESSION_ID}" in session.success_url:
        return session.success_url.replace("{CHECKOUT_SESSION_ID}", session.id)
    parts = urlsplit(session.success_url)
    query = (parts.query + "&" if parts.query else "") + urlencode({"session_id": session.id})
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))


def form_origins(visit: Visit) -> list[str]:
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




async def load_session(rt: Runtime, session_id: str) -> Visit:
    async with rt.db.read() as conn:
        session = await session_store.select_session_by_id(conn, session_id)
        if session is None:
            raise FlintError(404, "checkout_not_found", "No such checkout.")
        order = await order_store.select_order_by_id(conn, session.order_id)
        merchant = await merchant_store.select_merchant(conn, session.merchant_id)
    assert order is not None and merchant is not None
    return Visit(order, merchant, session=session)


async def load_link(rt: Runtime, link_id: str) -> Visit:
    async with rt.db.read() as conn:
        link = await link_store.select_link_by_id(conn, link_id)
        if link is None:
            raise FlintError(404, "payment_link_not_found", "No such payment link.")
        order = await order_store.select_order_by_id(conn, link.order_id)
        merchant = await merchant_store.select_merchant(conn, link.merchant_id)
    assert order is not None and merchant is not None
    return Visit(order, merchant, link=link)


async def reload(rt: Runtime, visit: Visit) -> Visit:
    return await load_session(rt, visit.session.id) if visit.session else await load_link(rt, visit.subject_id)


# Capture "manual" (docs/api.md 17): the payment and the order are "authorized" until the merchant captures.
PAYMENT_AUTHORIZED = ORDER_AUTHORIZED = "authorized"
AUTHORIZATIONS_LOOKED_AT = 100  # an order's newest payments searched for its one standing authorization


async def paid_with(rt: Runtime, order: Order) -> Payment | None:
    """The payment the receipt page shows: the captured one, or while the order is authorized its
    authorization (at most one of either per order: payments/guard.py)."""
    async with rt.db.read() as conn:
        if order.status != ORDER_AUTHORIZED:
            return await payment_store.select_succeeded_payment_of_order(conn, order.id)
        found, _ = await payment_store.select_payments_page(conn, order.merchant_id, order.id,
                                                            AUTHORIZATIONS_LOOKED_AT, None)
    return next((payment for payment in found if payment.status == PAYMENT_AUTHORIZED), None)


async def challenge_payment(rt: Runtime, visit: Visit, payment_id: str) -> Payment:
    """A payment of this visit's own channel (404 for any other: a link never shows a session's)."""
    async with rt.db.read() as conn:
        payment = await payment_store.select_payment(conn, visit.order.merchant_id, payment_id)
    if payment is None or not visit.owns(payment):
        raise FlintError(404, "checkout_not_found", "No such checkout.")
    return payment


_EXPIRY = re.compile(r"^\s*(\d{1,2})\s*/?\s*(\d{2}|\d{4})\s*$")


def check_card_form(fields: Mapping[str, str]) -> tuple[Card | None, list[FlintError]]:
    """The card of a posted form (`Card number`, `Expiry`, `CVC`), or every reason it is refused."""
    match = _EXPIRY.match(fields.get("expiry", ""))
    # An expiry that does not read as MM / YY is its own problem; the number and CVC are judged anyway.
    month, year = (int(match.group(1)), int(match.group(2))) if match else (1, clock.now().year + 1)
    card, problems = check_card(fields.get("card_number", ""), month, year, fields.get("cvc", "").strip())
    if not match:
        problems = [p for p in problems if not p.code.startswith("invalid_expiry")]
        at = 1 if problems and problems[0].code == "invalid_card_number" else 0  # in the form's order
        problems.insert(at, FlintError(400, "invalid_expiry_month", "Enter the expiry date as MM / YY.",
                                       param="card.exp_month"))
        card = None
    return card, problems


async def checkout_form(rt: Runtime, visit: Visit) -> details.CheckoutForm:
    """Every field this visit's form shows: its session's or link's, and the installed apps'."""
    return await details.load_form(rt, visit.session or visit.link, visit.order)  # type: ignore[arg-type]


async def buyer_form(rt: Runtime, visit: Visit, locale: str, values: Mapping[str, str], errors: Mapping[str, str]):
    """The buyer fields to render (flint.buyers.service.form_fields), with what the buyer typed and the
    messages to show at each field, by input name."""
    return (await checkout_form(rt, visit)).render(locale, dict(values), dict(errors))


async def pay_form(rt: Runtime, visit: Visit, form: Mapping[str, str], address: str,
                   locale: str | None = None) -> Payment:
    """Pay with a posted form: the card and the buyer's details are judged together (400 with every bad
    field in ``errors``, no attempt), then the one confirm path. ``locale``: the page's language (the
    receipt's, docs/api.md 16)."""
    card, card_problems = check_card_form(form)
    collected = details.check(await checkout_form(rt, visit), buyers.flatten_form(form), card_problems)
    assert card is not None
    return await collect.confirm_payment(rt, visit.attempt(address, locale), card, Actor("buyer", visit.subject_id),
                                         collected)


async def answer_challenge(rt: Runtime, visit: Visit, payment: Payment, approved: bool,
                           locale: str | None = None) -> str:
    """The buyer's 3-D Secure answer; returns where the buyer goes next: the merchant's success page,
    or back to the form with the reason."""
    try:
        done = await collect.resolve_challenge(rt, visit.order.merchant_id, payment.id, approved,
                                               Actor("buyer", visit.subject_id),
                                               checkout_session_id=visit.session.id if visit.session else None,
                                               locale=locale)
    except FlintError as error:
        return f"{visit.base_path}?" + urlencode({"error": error.code})
    if done.status in ("succeeded", PAYMENT_AUTHORIZED):
        return visit.success_location()
    return f"{visit.base_path}?" + urlencode({"error": done.failure_code or "payment_failed"})


def form_token(rt: Runtime, visit: Visit) -> str:
    return forms.issue(rt, visit.subject_id)


async def spend_form(rt: Runtime, visit: Visit, token: str | None) -> tuple[str, dict | None]:
    """(the form's nonce, None) the first time a form is sent; (nonce, the earlier use) when the same
    form comes again (a double click, a resubmitted page, a replay): refused, never run twice."""
    return await forms.spend_token(rt, token, visit.subject_id)


async def remember(rt: Runtime, nonce: str, location: str) -> None:
    """Where the form's first submission went, for the page a replay of it shows."""
    await forms.remember(rt, nonce, location)
