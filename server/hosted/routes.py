"""Hosted buyer pages: the checkout page at a session's `url`, a payment link's page, the 3-D Secure
challenge, the receipt and the widget's card frame. Plain HTML forms that work with JavaScript off; the
work is hosted/service.py's (the same confirm path as the widget), these routes pick the honest page
and status code for each state."""
from __future__ import annotations

from quart import Blueprint, Response, g, redirect, request

from flint import i18n, money
from flint.buyers.texts import MESSAGES as FIELD_MESSAGES
from flint.errors import FlintError
from flint.hosted import service
from flint.hosted.service import Visit
from flint.hosted.texts import FRAME_TEXTS, MESSAGES, TOO_MANY_ATTEMPTS
from flint.http import assets, pages
from flint.http.auth import public
from flint.http.context import client_address, runtime
from flint.payments.models import FAILED, REQUIRES_ACTION, SUCCEEDED
from flint.processors import FAILURE_MESSAGES
from flint.runtime import Runtime

bp = Blueprint("hosted", __name__)

# Closed channels: which honest page each code gets (a paid order shows its receipt instead).
_STATES = {"order_canceled": "canceled", "payment_link_inactive": "link_inactive",
           "payment_link_expired": "link_expired"}
CLOSED_CODES = ("order_already_paid", "order_authorized", "order_canceled", "session_expired", "session_not_open",
                "payment_link_inactive", "payment_link_expired")


def _money(amount: int, currency: str) -> str:
    return money.format_amount(amount, currency, g.locale)


def _render(template: str, visit: Visit | None, status: int = 200, **context) -> Response:
    if visit is not None:
        # CSP form-action also governs where a form's redirect may land (Chrome enforces it).
        g.form_origins = service.form_origins(visit)
        context.update(visit=visit, merchant=visit.merchant, order=visit.order,
                       line_items=visit.order.to_dict()["line_items"])
    return pages.page(template, status, money=_money, **context)


async def _state_page(rt: Runtime, visit: Visit) -> Response | None:
    """The honest page for a checkout or link that cannot take a payment, or None if it can.
    Whether it can is the channel's rule (the one the confirm path applies); this picks the page."""
    try:
        visit.check_payable()
    except FlintError as closed:
        if closed.code == "order_already_paid" or visit.order.status == service.ORDER_AUTHORIZED:
            # Paid, or authorized and waiting for the merchant's capture (docs/api.md 17): the receipt
            # says which, never "paid" for a card that was only authorized.
            return _render("checkout/receipt.html", visit, 200, payment=await service.paid_with(rt, visit.order),
                           already_paid=True)
        return _render("checkout/state.html", visit, 410, state=_STATES.get(closed.code, "expired"))
    return None


# Where a problem's param lands on the form: the card's parts have inputs of their own names (the
# text boxes of docs/api.md 5); every other param is already its input's name (spec: dotted paths).
CARD_INPUTS = {"card.number": "card_number", "card.exp_month": "expiry", "card.exp_year": "expiry",
               "card.cvc": "cvc"}
CARD_FIELDS = ("card_number", "expiry", "cvc")
# What a refused form keeps of what the buyer typed: everything but the card (never echoed back) and
# the spent form token; each value cut to a length no field allows, so a page never reflects a flood.
NOT_KEPT = frozenset({*CARD_FIELDS, "form_token"})
KEPT_LENGTH = 500


def kept_values(form) -> dict[str, str]:
    return {name: value[:KEPT_LENGTH] for name, value in form.items() if name not in NOT_KEPT}


def field_messages(problems: list[dict]) -> dict[str, str]:
    """Input name -> the message to show at it (the first one per field), in the buyer's language: a
    known code's own text from the catalogue; an app's field_error (or a code we have no words for) as
    the server gave it, as plain text."""
    known = {**FIELD_MESSAGES, **MESSAGES}
    messages: dict[str, str] = {}
    for problem in problems:
        name = CARD_INPUTS.get(problem.get("param") or "", problem.get("param") or "")
        code = problem.get("code")
        if name in messages:
            continue
        text = known.get(code) if code != "field_error" else None
        messages[name] = _translate(text) if text else str(problem.get("message") or "")
    return messages


async def _checkout_page(rt: Runtime, visit: Visit, status: int = 200, error: str | None = None,
                         values: dict[str, str] | None = None, errors: dict[str, str] | None = None) -> Response:
    """The form: the buyer's fields (with what was typed and each field's message after a refusal), then
    the card. Messages with no field on this form go into the alert; the first invalid field gets focus."""
    errors = errors or {}
    form = await service.buyer_form(rt, visit, g.get("locale", "en"), values or {}, errors)
    names = [field.name for section in form.sections for field in section.fields]
    shown = set(names) | set(CARD_FIELDS)
    focus = next((name for name in [*names, *CARD_FIELDS] if name in errors), None)
    return _render("checkout/page.html", visit, status, form_token=service.form_token(rt, visit),
                   error=error, buyer_form=form, errors=errors, focus=focus,
                   unplaced=[message for name, message in errors.items() if name not in shown])


def _replayed_page(visit: Visit, earlier: dict) -> Response:
    # The same form again: refused, never run twice; the page links to where the first one went.
    return _render("checkout/state.html", visit, 409, state="submitted", outcome_url=earlier.get("outcome_url"))


def _limited_page(visit: Visit, refused: FlintError) -> Response:
    """Card testing limit (docs/api.md 13): a 429 page that says when to try again, with the way back to
    the form (no payment was attempted, so nothing was charged)."""
    retry_after = refused.headers.get("Retry-After", "60")
    minutes = max(1, -(-int(retry_after) // 60))  # whole minutes, rounded up: never too early
    wait = i18n.translations(g.get("locale", "en")).ngettext(*TOO_MANY_ATTEMPTS, minutes)
    page = _render("checkout/too_many_attempts.html", visit, 429, message=wait.replace("%(count)s", str(minutes)))
    page.headers["Retry-After"] = retry_after
    return page


async def _show(rt: Runtime, visit: Visit) -> Response:
    if (page := await _state_page(rt, visit)) is not None:
        return page
    error = request.args.get("error")
    return await _checkout_page(rt, visit, 200, error=MESSAGES.get(error) if error else None)


async def _pay(rt: Runtime, visit: Visit) -> Response:
    form = await request.form
    nonce, earlier = await service.spend_form(rt, visit, form.get("form_token"))
    if earlier is not None:
        return _replayed_page(visit, earlier)
    if (page := await _state_page(rt, visit)) is not None:
        return page
    kept = kept_values(form)
    try:
        payment = await service.pay_form(rt, visit, form, client_address(), g.get("locale", "en"))
    except FlintError as error:
        if error.code in CLOSED_CODES:
            return await _state_page(rt, await service.reload(rt, visit)) or await _checkout_page(rt, visit)
        if error.code == "too_many_attempts":
            return _limited_page(visit, error)
        problems = error.extra.get("errors") if error.status == 400 else None
        if problems:
            # Refused before any attempt: every bad field at once, each message at its field.
            return await _checkout_page(rt, visit, 400, error=MESSAGES["invalid_field"], values=kept,
                                        errors=field_messages(problems))
        status = {400: 400, 402: 402, 409: 409, 503: 503}.get(error.status, 400)
        return await _checkout_page(rt, visit, status, error=MESSAGES.get(error.code, error.detail), values=kept)
    if payment.status in (SUCCEEDED, service.PAYMENT_AUTHORIZED):  # authorized: capture "manual"
        location = visit.success_location()
    elif payment.status == REQUIRES_ACTION:
        location = f"{visit.base_path}/challenge/{payment.id}"
    else:
        assert payment.status == FAILED
        return await _checkout_page(rt, visit, 402, error=payment.failure_message, values=kept)
    await service.remember(rt, nonce, location)
    return redirect(location, 303)


async def _show_challenge(rt: Runtime, visit: Visit, payment_id: str) -> Response:
    payment = await service.challenge_payment(rt, visit, payment_id)
    if payment.status != REQUIRES_ACTION:
        return redirect(visit.base_path, 303)
    return _render("checkout/challenge.html", visit, 200, payment=payment, form_token=service.form_token(rt, visit))


async def _answer_challenge(rt: Runtime, visit: Visit, payment_id: str) -> Response:
    payment = await service.challenge_payment(rt, visit, payment_id)
    form = await request.form
    nonce, earlier = await service.spend_form(rt, visit, form.get("form_token"))
    if earlier is not None:
        return _replayed_page(visit, earlier)
    location = await service.answer_challenge(rt, visit, payment, form.get("action") == "approve",
                                              g.get("locale", "en"))
    await service.remember(rt, nonce, location)
    return redirect(location, 303)


async def _receipt(rt: Runtime, visit: Visit) -> Response:
    payment = await service.paid_with(rt, visit.order)
    if payment is None:
        return redirect(visit.base_path, 303)
    return _render("checkout/receipt.html", visit, 200, payment=payment, already_paid=False)


@bp.get("/checkout/<session_id>")
@public
async def get_checkout(session_id: str):
    rt = runtime()
    return await _show(rt, await service.load_session(rt, session_id))


@bp.get("/pay/<link_id>")
@public
async def get_link_page(link_id: str):
    """A payment link's page: the hosted checkout form for the link's order (and nothing else)."""
    rt = runtime()
    return await _show(rt, await service.load_link(rt, link_id))


@bp.post("/checkout/<session_id>")
@public
async def post_checkout(session_id: str):
    rt = runtime()
    return await _pay(rt, await service.load_session(rt, session_id))


@bp.post("/pay/<link_id>")
@public
async def post_link_page(link_id: str):
    rt = runtime()
    return await _pay(rt, await service.load_link(rt, link_id))


@bp.get("/checkout/<session_id>/challenge/<payment_id>")
@public
async def get_challenge(session_id: str, payment_id: str):
    rt = runtime()
    return await _show_challenge(rt, await service.load_session(rt, session_id), payment_id)


@bp.post("/checkout/<session_id>/challenge/<payment_id>")
@public
async def post_challenge(session_id: str, payment_id: str):
    rt = runtime()
    return await _answer_challenge(rt, await service.load_session(rt, session_id), payment_id)


@bp.get("/pay/<link_id>/challenge/<payment_id>")
@public
async def get_link_challenge(link_id: str, payment_id: str):
    rt = runtime()
    return await _show_challenge(rt, await service.load_link(rt, link_id), payment_id)


@bp.post("/pay/<link_id>/challenge/<payment_id>")
@public
async def post_link_challenge(link_id: str, payment_id: str):
    rt = runtime()
    return await _answer_challenge(rt, await service.load_link(rt, link_id), payment_id)


@bp.get("/checkout/<session_id>/receipt")
@public
async def get_receipt(session_id: str):
    rt = runtime()
    return await _receipt(rt, await service.load_session(rt, session_id))


@bp.get("/pay/<link_id>/receipt")
@public
async def get_link_receipt(link_id: str):
    rt = runtime()
    return await _receipt(rt, await service.load_link(rt, link_id))


@bp.get("/widget/v1/frame/<session_id>")
@public
async def get_card_frame(session_id: str):
    """The embedded widget's card frame (docs/api.md 5): the hosted card form and confirm path in an
    iframe on the merchant's page. Only the merchant's registered origins may frame it."""
    rt = runtime()
    visit = await service.load_session(rt, session_id)
    assert visit.session is not None
    # Set before anything can fail, so even an error page here is framable only by the merchant.
    g.frame_ancestors = visit.merchant.origins
    unavailable = None
    try:
        visit.check_payable()
    except FlintError as closed:
        unavailable = {"code": closed.code, "message": _translate(closed.detail)}
    script = assets.asset("frame.js")
    # The texts that name the merchant (the card was authorized, docs/api.md 17) say it as the receipt page does.
    messages = {code: text.replace("%(merchant)s", visit.merchant.name) for code, text in _frame_messages().items()}
    frame_config = {
        "session": visit.session.id,
        "origins": visit.merchant.origins,  # the frame checks its parent against these itself too
        "confirmUrl": f"/v1/checkout/sessions/{visit.session.id}/confirm",
        "challengeUrl": f"/v1/checkout/sessions/{visit.session.id}/challenge",
        "successUrl": service.success_location(visit.session),
        "amount": _money(visit.order.amount_due, visit.order.currency),
        "unavailable": unavailable,
        "messages": messages,
    }
    return _render("embed/frame.html", visit, 200, form_token=service.form_token(rt, visit), error=None,
                   buyer_form=await service.buyer_form(rt, visit, g.get("locale", "en"), {}, {}),
                   frame_config=frame_config, hosted_url=visit.session.hosted_url(rt.config.public_url),
                   frame_script={"url": script.versioned_path, "integrity": script.integrity})


def _translate(text: str) -> str:
    return i18n.translations(g.get("locale", "en")).gettext(text)


def _frame_messages() -> dict[str, str]:
    """Every text the frame's script may show, in the buyer's language: decline and error codes
    (as the confirm API answers them), the buyer fields' error codes (flint.buyers; field_error is an
    app's own words, shown as given) and its own inline validation."""
    texts = {**FAILURE_MESSAGES, **FIELD_MESSAGES, **MESSAGES, **FRAME_TEXTS}
    messages = {code: _translate(text) for code, text in texts.items()}
    # too_many_attempts names a number of minutes: the frame gets the singular and the plural with
    # "%(count)s" left in and picks by the count (n = 1 is the singular in en, de and fr alike).
    translations = i18n.translations(g.get("locale", "en"))
    messages["too_many_attempts_one"] = translations.ngettext(*TOO_MANY_ATTEMPTS, 1)
    messages["too_many_attempts_other"] = translations.ngettext(*TOO_MANY_ATTEMPTS, 2)
    return messages
