"""Checkout sessions for merchants, and the buyer's confirm endpoints (client_token auth)."""
from __future__ import annotations

from quart import Blueprint, request
from quart_schema import document_response

from flint import i18n
from flint.api.schemas.checkout import (
    AnswerCheckoutSessionChallengeRequest,
    CheckoutSession,
    CheckoutSessionBeacon,
    CheckoutSessionList,
    ClientSession,
    ConfirmCheckoutSessionRequest,
    CreateCheckoutSessionRequest,
    PaymentConfirmation,
    PaymentProblem,
    ReportCheckoutSessionFallbackRequest,
    SendCheckoutSessionBeaconRequest,
)
from flint.api.schemas.common import ListQuery, page
from flint.cards import check_card
from flint.checkout import service
from flint.checkout.texts import loader_messages
from flint.closing import service as closing
from flint.collect import details
from flint.collect import service as collect
from flint.collect.models import Attempt
from flint.errors import FlintError
from flint.http.auth import client_token, client_token_or_body, principal, scope
from flint.http.context import client_address, runtime
from flint.http.cors import open_to_browsers
from flint.http.openapi import operation
from flint.http.validation import json_body, no_body, query_args
from flint.payments.models import FAILED, REQUIRES_ACTION, Payment

bp = Blueprint("checkout", __name__, url_prefix="/v1/checkout/sessions")


@bp.post("")
@operation("createCheckoutSession", "Checkout sessions")
@scope("checkout:write")
@document_response(CheckoutSession)
@json_body(CreateCheckoutSessionRequest)
async def post_session(body: CreateCheckoutSessionRequest):
    """Create a checkout session for an existing order or an inline new one."""
    me, rt = principal(), runtime()
    session = await service.create_session(rt, me.merchant_id, body.to_new_session(), me.actor)
    return service.present(rt, session)


@bp.get("")
@operation("listCheckoutSessions", "Checkout sessions")
@scope("orders:read")
@document_response(CheckoutSessionList)
@query_args(ListQuery)
async def get_sessions(query: ListQuery):
    """List checkout sessions, newest first."""
    rt, me = runtime(), principal()
    sessions, has_more = await service.list_sessions(rt, me.merchant_id, query.limit, query.starting_after)
    return page(sessions, has_more, lambda s: service.present(rt, s, with_token=me.may("checkout:write")))


@bp.get("/client")
@operation("retrieveClientSession", "Checkout sessions")
@client_token
@open_to_browsers
@document_response(ClientSession)
async def get_client_session():
    """Buyer's page: the session its client_token names, as the widget's loader needs it (whether it
    can take a payment, the card frame's URL, the hosted fallback URL). Callable from any origin."""
    me = principal()
    assert me.session is not None
    return await service.buyer_view(runtime(), me.session, loader_messages(request.headers.get("Accept-Language")),
                                    _buyer_locale())


@bp.get("/<session_id>")
@operation("retrieveCheckoutSession", "Checkout sessions")
@scope("orders:read")
@document_response(CheckoutSession)
async def get_session(session_id: str):
    """Retrieve a checkout session."""
    rt, me = runtime(), principal()
    # The client_token lets whoever holds it pay: only for a merchant key or an app that may run
    # checkouts, not for one that only reads orders (docs/api.md 12).
    return service.present(rt, await service.get_session(rt, me.merchant_id, session_id),
                           with_token=me.may("checkout:write"))


@bp.post("/<session_id>/expire")
@operation("expireCheckoutSession", "Checkout sessions")
@scope("checkout:write")
@document_response(CheckoutSession)
@no_body
async def post_session_expire(session_id: str):
    """Expire an open session now (409 if it is closed or a payment is in flight)."""
    me, rt = principal(), runtime()
    return service.present(rt, await closing.expire_session(rt, me.merchant_id, session_id, me.actor))


def _buyer_locale() -> str:
    """The buyer's language (these routes are called by the buyer's own browser): kept for the emails
    Flint may send them (docs/api.md 16)."""
    return i18n.negotiate(request.headers.get("Accept-Language"))


def _buyer_result(payment: Payment) -> dict:
    if payment.status == FAILED:
        # A decline is a 402 problem whose code is the failure code, as Stripe answers it.
        raise FlintError(402, payment.failure_code or "payment_failed",
                         payment.failure_message or "The payment failed.",
                         extra={"payment_id": payment.id, "payment": payment.to_dict()})
    body = payment.to_dict()
    body["next_action"] = (
        {"type": "three_d_secure_challenge", "payment_id": payment.id} if payment.status == REQUIRES_ACTION else None
    )
    return body


@bp.post("/<session_id>/confirm")
@operation("confirmCheckoutSession", "Checkout sessions", errors=[(402, PaymentProblem), 429, 503])
@client_token
@document_response(PaymentConfirmation)
@json_body(ConfirmCheckoutSessionRequest)
async def post_session_confirm(session_id: str, body: ConfirmCheckoutSessionRequest):
    """Buyer: pay this session's order with a card (Bearer = the session's client_token).

    The card is validated (Luhn, expiry, CVC) before any attempt; a decline answers 402 with the
    decline code; the 3-D Secure card answers ``requires_action`` with a ``next_action``. Past a
    card testing limit (docs/api.md 13): 429 ``too_many_attempts`` with ``Retry-After``.
    """
    me, rt = principal(), runtime()
    session = me.session
    assert session is not None
    card, card_problems = check_card(body.card.number, body.card.exp_month, body.card.exp_year, body.card.cvc)
    # Card and buyer details are judged together: every bad field in one answer, before any attempt.
    collected = details.check(await details.load_form(rt, session), body.submitted(), card_problems)
    assert card is not None
    attempt = Attempt.for_session(session, channel=session.mode, client_address=client_address(),
                                  locale=_buyer_locale())
    payment = await collect.confirm_payment(rt, attempt, card, me.actor, collected)
    return _buyer_result(payment)


@bp.post("/<session_id>/challenge")
@operation("answerCheckoutSessionChallenge", "Checkout sessions", errors=[(402, PaymentProblem), 503])
@client_token
@document_response(PaymentConfirmation)
@json_body(AnswerCheckoutSessionChallengeRequest)
async def post_session_challenge(session_id: str, body: AnswerCheckoutSessionChallengeRequest):
    """Buyer: answer the 3-D Secure challenge of a payment of this session (approve or deny)."""
    me, rt = principal(), runtime()
    payment = await collect.resolve_challenge(rt, me.merchant_id, body.payment, body.result == "approve", me.actor,
                                              checkout_session_id=session_id, locale=_buyer_locale())
    return _buyer_result(payment)


@bp.post("/<session_id>/fallback")
@operation("reportCheckoutSessionFallback", "Checkout sessions")
@client_token
@open_to_browsers
@document_response(ClientSession)
@json_body(ReportCheckoutSessionFallbackRequest)
async def post_session_fallback(session_id: str, body: ReportCheckoutSessionFallbackRequest):
    """Buyer's page: the widget showed the hosted link instead of its card frame. The first report of
    an open session records ``checkout.session.fallback_used`` with the reason; repeats change nothing."""
    me, rt = principal(), runtime()
    assert me.session is not None
    session = await service.record_fallback(rt, me.session, body.reason, me.actor)
    return await service.buyer_view(rt, session, loader_messages(request.headers.get("Accept-Language")),
                                    _buyer_locale())


@bp.post("/<session_id>/beacon")
@operation("sendCheckoutSessionBeacon", "Checkout sessions")
@client_token_or_body
@open_to_browsers
@document_response(CheckoutSessionBeacon)
@json_body(SendCheckoutSessionBeaconRequest, text_plain=True)
async def post_session_beacon(session_id: str, body: SendCheckoutSessionBeaconRequest):
    """Buyer's page (navigator.sendBeacon): the buyer typed in the card form and left without paying.
    A beacon cannot send headers, so the client_token may come in the body (JSON sent as text/plain).
    Recorded on the session for drop-off recovery; a closed session records nothing (``recorded: false``)."""
    me = principal()
    assert me.session is not None
    recorded = await service.record_buyer_left(runtime(), me.session, _buyer_locale())
    return {"object": "checkout.beacon", "session_id": me.session.id, "recorded": recorded}
