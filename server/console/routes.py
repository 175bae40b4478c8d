"""The merchant console (docs/api.md 15): the shell, the Orders pages with the order's actions (Refund,
Capture, Void, Cancel order, Create payment link, Send payment link) and its Emails, and the Payment links page (Send,
Deactivate), for the person signed in at /login.
Server-rendered pages and plain forms that work without JavaScript, under the same CSP and headers as every
page (flint.http.headers); the work, role checks and once-only actions are service.py's.

Flint's own root is here too: ``/`` sends a signed-in person to the console and anyone else to /login."""
from __future__ import annotations

from urllib.parse import quote, urlencode

from quart import Blueprint, Response, redirect, request

from flint import clock, money
from flint.console import overview, service
from flint.console.service import STATUS_LABELS, STATUSES, Viewer
from flint.errors import FlintError
from flint.http import pages
from flint.http.auth import public
from flint.http.context import runtime
from flint.runtime import Runtime
from flint.security import CSRF_SALT

bp = Blueprint("console", __name__)

PREFIX = "/dashboard"
# The sign-in cookie and the sign-out form's token, as flint.web.accounts sets and checks them (a surface
# beside this one, which this one may not import: the two are independent rows of the layers contract).
SESSION_COOKIE = "flint_session"


def _sign_out_token(rt: Runtime, who: Viewer) -> str:
    return rt.signer.dumps(CSRF_SALT, {"s": who.session_id})


def _to_sign_in() -> Response:
    # Back here after signing in: the path and query as asked (web.accounts.safe_next checks it).
    here = request.path + (f"?{request.query_string.decode('latin-1')}" if request.query_string else "")
    return redirect("/login?next=" + quote(here, safe="/"), 303)


# The console speaks English for now (its texts are not in the catalogues yet): amounts are written the
# same way, not in the browser's language beside English words.
LOCALE = "en"


def _money(amount: int, currency: str) -> str:
    return money.format_amount(amount, currency, LOCALE)


def _render(template: str, who: Viewer, section: str, status: int = 200, **context) -> Response:
    return pages.page(template, status, account=who.merchant, section=section, money=_money,
                      nav=service.nav_links(who), member=who.member,
                      sign_out_token=_sign_out_token(runtime(), who), status_labels=STATUS_LABELS,
                      shown_time=service.shown_time, public_time=clock.public, **context)


def _refused(who: Viewer, section: str, error: FlintError) -> Response:
    """A role that may not open a page: 403, said in the console's own words."""
    if error.code != "role_forbidden":
        raise error
    return _render("console/forbidden.html", who, section, 403)


async def _viewer() -> Viewer | None:
    return await service.viewer(runtime(), request.cookies.get(SESSION_COOKIE))


@bp.get("/")
@public  # a cookie, not a credential: anyone may be told where to go
async def get_root():
    return redirect(PREFIX if await _viewer() is not None else "/login", 303)


@bp.get(PREFIX)
@public  # the signed-in person's web session (cookie), checked here; signed out: to /login
async def get_overview():
    who = await _viewer()
    if who is None:
        return _to_sign_in()
    try:
        view = await overview.overview(runtime(), who, request.args.get("period"))
    except FlintError as error:
        return _refused(who, "overview", error)
    return _render("console/overview.html", who, "overview", view=view, charts=overview.charts_of(view),
                   recent=view.recent, periods=overview.PERIODS)


def _orders_url(**params: str | None) -> str:
    kept = {name: value for name, value in params.items() if value}
    return f"{PREFIX}/orders" + (f"?{urlencode(kept)}" if kept else "")


@bp.get(f"{PREFIX}/orders")
@public  # the signed-in person's web session (cookie), checked here; signed out: to /login
async def get_orders():
    who = await _viewer()
    if who is None:
        return _to_sign_in()
    args = request.args
    try:
        page = await service.orders_page(runtime(), who, status=args.get("status"), query=args.get("q", ""),
                                         starting_after=args.get("starting_after"),
                                         ending_before=args.get("ending_before"))
    except FlintError as error:
        return _refused(who, "orders", error)
    newer = _orders_url(status=page.status, q=page.query, ending_before=page.newer) if page.newer else None
    older = _orders_url(status=page.status, q=page.query, starting_after=page.older) if page.older else None
    # htmx asking as the filters change (docs/api.md 15): the list alone, which is all it swaps in. Going
    # back in history (HX-History-Restore-Request), or any other caller, gets the whole page.
    fragment = request.headers.get("HX-Request") == "true" and "HX-History-Restore-Request" not in request.headers
    return _render("console/_orders_results.html" if fragment else "console/orders.html", who, "orders",
                   page=page, statuses=STATUSES, newer_url=newer, older_url=older)


@bp.get(f"{PREFIX}/orders/<order_id>")
@public  # the signed-in person's web session (cookie), checked here; signed out: to /login
async def get_order(order_id: str):
    who = await _viewer()
    if who is None:
        return _to_sign_in()
    return await _order_page(who, order_id)


# -- the order's actions (docs/api.md 15): Refund, Cancel order, Create payment link ----------------------

async def _order_page(who: Viewer, order_id: str, status: int = 200, *, error: str | None = None,
                      error_form: str | None = None, values: dict[str, str] | None = None,
                      confirm_cancel: bool = False, confirm_void: bool = False) -> Response:
    """The order page with the actions this person may take now; after an action, what it did (from the
    query the action redirected to); after a refused one, why, with what was typed kept."""
    rt, args = runtime(), request.args
    try:
        after = int(args.get("after", "0"))
    except ValueError:
        after = 0
    try:
        story = await service.order_story(rt, who, order_id[:100], after=after, locale=LOCALE)
    except FlintError as error_:
        if error_.status != 404:
            return _refused(who, "orders", error_)
        # Unknown, or another merchant's: the same page, which says nothing of whether it exists. A form
        # refused for its token stays a 403 (nothing was done), whatever the order.
        return _render("console/not_found.html", who, "orders", 403 if error_form == "token" else 404)
    order = story.order
    done_refund = await service.refund_for(rt, who, order, args["refund"]) if "refund" in args else None
    new_link = await service.link_for(rt, who, order, args["link"]) if "link" in args else None
    sent = await service.sent_email(rt, who, args["sent"], order_id=order.id) if "sent" in args else None
    captured = await service.payment_for(rt, who, order, args["captured"]) if "captured" in args else None
    voided = await service.payment_for(rt, who, order, args["voided"]) if "voided" in args else None
    held = await service.authorization(rt, who, order)
    emails, more_emails = await service.order_emails(rt, who, order)
    actions = service.order_actions(who, order)
    values = values or {}
    return _render(
        "console/order.html", who, "orders", status, story=story, order=order, actions=actions,
        tokens={name: service.form_token(rt, who) for name in ("refund", "cancel", "link", "send", "capture", "void")},
        sent=sent, emails=emails, more_emails=more_emails, mail_configured=service.mail_configured(rt),
        mail_not_configured=service.MAIL_NOT_CONFIGURED,
        send_email=values.get("email", service.buyer_email(order)),
        refund_amount=values.get("amount", service.major_units(order.amount_refundable, order.currency)),
        refund_reason=values.get("reason", ""), refund_reasons=service.REFUND_REASONS,
        exponent=money.exponent(order.currency), done_refund=done_refund, new_link=new_link,
        public_url=rt.config.public_url, canceled="canceled" in args and order.status == "canceled",
        error=error, error_form=error_form, confirm_cancel=confirm_cancel and actions.cancel,
        authorization=held, captured=captured, voided=voided, confirm_void=confirm_void and actions.void,
        capture_amount=values.get("amount", service.major_units(held.amount_capturable, order.currency))
        if held else "")


async def _answer(who: Viewer, order_id: str, outcome: service.Outcome, form: str,
                  values: dict[str, str] | None = None) -> Response:
    if outcome.location is not None:
        return redirect(outcome.location, 303)
    if outcome.status == 403:
        return _refused(who, "orders", FlintError(403, outcome.code or "role_forbidden", outcome.error or ""))
    return await _order_page(who, order_id, outcome.status, error=outcome.error, error_form=form, values=values)


async def _refused_form(who: Viewer, order_id: str, error: FlintError) -> Response:
    """A refused token (403 form_token_*) or role (403 role_forbidden): nothing was done."""
    if error.code == "role_forbidden":
        return _refused(who, "orders", error)
    if error.status != 403:
        raise error
    return await _order_page(who, order_id, 403, error="This form's security token is not valid (it may have "
                             "expired). Nothing was done; try again.", error_form="token")


@bp.get(f"{PREFIX}/orders/<order_id>/cancel")
@public  # the signed-in person's web session (cookie), checked here; signed out: to /login
async def get_order_cancel(order_id: str):
    """The confirm step of Cancel order, without JavaScript: the order page asking, with a POST form."""
    who = await _viewer()
    if who is None:
        return _to_sign_in()
    return await _order_page(who, order_id, confirm_cancel=True)


@bp.get(f"{PREFIX}/orders/<order_id>/void")
@public  # the signed-in person's web session (cookie), checked here; signed out: to /login
async def get_order_void(order_id: str):
    """The confirm step of Void, without JavaScript: the order page asking, with a POST form."""
    who = await _viewer()
    if who is None:
        return _to_sign_in()
    return await _order_page(who, order_id, confirm_void=True)


async def _order_form(order_id: str, form_name: str, act, **fields: int) -> Response:
    """One order action's form (Capture, Void, Refund, Cancel order, Create and Send payment link): the
    typed ``fields`` (each cut at its length) and the form's token go to ``act``, the service; its answer
    is a redirect to what it did, or the order page saying why nothing was done, with the typing kept."""
    who = await _viewer()
    if who is None:
        return _to_sign_in()
    form = await request.form
    values = {name: form.get(name, "")[:length] for name, length in fields.items()}
    try:
        outcome = await act(runtime(), who, order_id[:100], form.get("csrf_token"), **values)
    except FlintError as error:
        return await _refused_form(who, order_id, error)
    return await _answer(who, order_id, outcome, form_name, values or None)


@bp.post(f"{PREFIX}/orders/<order_id>/capture")
@public  # the signed-in person's web session (cookie) and the form's single-use token, checked here
async def post_order_capture(order_id: str):
    """Capture (docs/api.md 15 and 17): the order's authorization, all of it or the amount typed."""
    return await _order_form(order_id, "capture", service.capture, amount=50)


@bp.post(f"{PREFIX}/orders/<order_id>/void")
@public  # the signed-in person's web session (cookie) and the form's single-use token, checked here
async def post_order_void(order_id: str):
    """Void (docs/api.md 15 and 17): the order's authorization released, the order open again."""
    return await _order_form(order_id, "void", service.void)


@bp.post(f"{PREFIX}/orders/<order_id>/refund")
@public  # the signed-in person's web session (cookie) and the form's single-use token, checked here
async def post_order_refund(order_id: str):
    return await _order_form(order_id, "refund", service.refund, amount=50, reason=50)


@bp.post(f"{PREFIX}/orders/<order_id>/cancel")
@public  # the signed-in person's web session (cookie) and the form's single-use token, checked here
async def post_order_cancel(order_id: str):
    return await _order_form(order_id, "cancel", service.cancel)


@bp.post(f"{PREFIX}/orders/<order_id>/payment_links")
@public  # the signed-in person's web session (cookie) and the form's single-use token, checked here
async def post_order_link(order_id: str):
    return await _order_form(order_id, "link", service.create_link)


@bp.post(f"{PREFIX}/orders/<order_id>/send_link")
@public  # the signed-in person's web session (cookie) and the form's single-use token, checked here
async def post_order_send_link(order_id: str):
    """Send payment link (docs/api.md 15): the order's payment link by email to the address typed."""
    return await _order_form(order_id, "send", service.send_link, email=320)


# -- Payment links ---------------------------------------------------------------------------------------

def _links_url(after: str | None = None) -> str:
    return f"{PREFIX}/payment_links" + (f"?{urlencode({'starting_after': after})}" if after else "")


async def _links_page(who: Viewer, status: int = 200, *, error: str | None = None,
                      error_link: str | None = None, typed_email: str = "") -> Response:
    rt, args = runtime(), request.args
    try:
        page = await service.links_page(rt, who, starting_after=args.get("starting_after"))
    except FlintError as error_:
        return _refused(who, "payment links", error_)
    deactivated = args.get("deactivated", "")[:100]
    sent = await service.sent_email(rt, who, args["sent"]) if "sent" in args else None
    return _render("console/payment_links.html", who, "payment links", status, page=page,
                   public_url=rt.config.public_url, link_status=service.link_status,
                   may_deactivate=who.may("links:write"), new_token=lambda: service.form_token(rt, who),
                   may_send=who.may("links:write"), mail_configured=service.mail_configured(rt),
                   mail_not_configured=service.MAIL_NOT_CONFIGURED, sent=sent, error_link=error_link,
                   typed_email=typed_email,
                   first_url=_links_url() if page.after else None,
                   older_url=_links_url(page.older) if page.older else None, here=_links_url(page.after),
                   deactivated=deactivated if deactivated.startswith("plink_") else None, error=error)


@bp.get(f"{PREFIX}/payment_links")
@public  # the signed-in person's web session (cookie), checked here; signed out: to /login
async def get_payment_links():
    who = await _viewer()
    if who is None:
        return _to_sign_in()
    return await _links_page(who)


async def _link_action(who: Viewer, act, **on_refusal) -> Response:
    """A Payment links form's answer: where its action went, or this page saying why nothing was done
    (a refused token 403, an unknown or another merchant's link 404, the action's own refusal with
    ``on_refusal``'s way of showing it)."""
    try:
        outcome = await act()
    except FlintError as error:
        if error.code == "role_forbidden":
            return _refused(who, "payment links", error)
        if error.status != 403:
            raise
        return await _links_page(who, 403, error="This form's security token is not valid (it may have expired). "
                                               "Nothing was done; try again.")
    if outcome.location is not None:
        return redirect(outcome.location, 303)
    if outcome.status == 404:  # unknown, or another merchant's: the same answer
        return await _links_page(who, 404, error="There is no payment link with this id in this account.")
    prefix = on_refusal.pop("prefix", "")
    return await _links_page(who, outcome.status, error=prefix + (outcome.error or ""), **on_refusal)


@bp.post(f"{PREFIX}/payment_links/<link_id>/deactivate")
@public  # the signed-in person's web session (cookie) and the form's single-use token, checked here
async def post_link_deactivate(link_id: str):
    who = await _viewer()
    if who is None:
        return _to_sign_in()
    form = await request.form
    back = _links_url(service.clean_query(form.get("starting_after")) or None)
    return await _link_action(who, lambda: service.deactivate_link(runtime(), who, link_id[:100],
                                                                    form.get("csrf_token"), back))


@bp.post(f"{PREFIX}/payment_links/<link_id>/send")
@public  # the signed-in person's web session (cookie) and the form's single-use token, checked here
async def post_link_send(link_id: str):
    """Send (docs/api.md 15): this payment link by email to the address typed."""
    who = await _viewer()
    if who is None:
        return _to_sign_in()
    form = await request.form
    email = form.get("email", "")[:320]
    back = _links_url(service.clean_query(form.get("starting_after")) or None)
    return await _link_action(
        who, lambda: service.send_link_by_id(runtime(), who, link_id[:100], form.get("csrf_token"), email, back),
        prefix="Not sent: ", error_link=link_id[:100], typed_email=email)
