"""The merchant console (docs/api.md 16), first slice: the shell and the Orders pages, read-only, for the
person signed in at /login. Server-rendered pages that work without JavaScript, under the same CSP and
headers as every page (flint.http.headers); the work is service.py's.

Flint's own root is here too: ``/`` sends a signed-in person to the console and anyone else to /login."""
from __future__ import annotations

from urllib.parse import quote, urlencode

from quart import Blueprint, Response, redirect, request

from flint import clock, money
from flint.console import service
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
        recent = await service.overview(runtime(), who)
    except FlintError as error:
        return _refused(who, "overview", error)
    return _render("console/overview.html", who, "overview", recent=recent)


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
    return _render("console/orders.html", who, "orders", page=page, statuses=STATUSES, newer_url=newer,
                   older_url=older)


@bp.get(f"{PREFIX}/orders/<order_id>")
@public  # the signed-in person's web session (cookie), checked here; signed out: to /login
async def get_order(order_id: str):
    who = await _viewer()
    if who is None:
        return _to_sign_in()
    try:
        after = int(request.args.get("after", "0"))
    except ValueError:
        after = 0
    try:
        story = await service.order_story(runtime(), who, order_id[:100], after=after,
                                          locale=LOCALE)
    except FlintError as error:
        if error.status != 404:
            return _refused(who, "orders", error)
        # Unknown, or another merchant's: the same page, which says nothing of whether it exists.
        return _render("console/not_found.html", who, "orders", 404)
    return _render("console/order.html", who, "orders", story=story, order=story.order)
