"""Unsubscribe from a merchant's recovery emails (docs/api.md 16): the buyer page a recovery email's
``List-Unsubscribe`` header and its unsubscribe line point to.

The signed token in the path (flint.mail.service.unsubscribe_token) names one merchant and one address;
it is the credential, checked by flint.mail.service. ``GET`` only shows the page (which merchant, which
address, an ``Unsubscribe`` button): mail scanners open links, so opening one must change nothing
(RFC 8058 3.2). ``POST`` unsubscribes:

* RFC 8058's one-click POST from a mailbox provider (body ``List-Unsubscribe=One-Click``), with no cookie
  and no form token: the token alone is the authority, as the RFC has it;
* the page's form, whose single-use form token (flint.forms) is bound to this link and a nonce cookie of
  this browser (as the invitation page's): another site's form cannot send it. Refused, the page comes
  back (403) with a fresh form and nothing changed.

Both are idempotent and answer a readable page; a link that is not genuine is a readable 404 that names
no merchant."""
from __future__ import annotations

import hashlib

from quart import Blueprint, Response, request

from flint.errors import FlintError
from flint.forms import service as forms
from flint.http import pages
from flint.http.auth import public
from flint.http.context import runtime
from flint.ids import new_secret
from flint.mail import service as mail
from flint.merchants import service as merchants
from flint.merchants.models import Merchant
from flint.runtime import Runtime

bp = Blueprint("hosted_unsubscribe", __name__)

NONCE_COOKIE = "flint_unsubscribe"  # this browser's nonce, which the page's form token is bound to
ONE_CLICK = "One-Click"  # RFC 8058: the body is List-Unsubscribe=One-Click


def _subject(token: str, nonce: str) -> str:
    # Bound to this link (a form of one link never unsubscribes another) and to this browser.
    return f"unsubscribe:{hashlib.sha256(token.encode()).hexdigest()[:32]}:{nonce}"


async def _target(rt: Runtime, token: str) -> tuple[Merchant, str] | None:
    """The merchant and address a genuine token names, changing nothing; None for any other token."""
    try:
        merchant_id, address = mail.unsubscribe_target(rt, token)
        return await merchants.get_merchant(rt, merchant_id), address
    except FlintError as error:
        if error.status != 404:
            raise
        return None


def _invalid() -> Response:
    return pages.page("unsubscribe/page.html", 404, state="invalid")


def _ask(rt: Runtime, token: str, found: tuple[Merchant, str], status: int = 200) -> Response:
    nonce = request.cookies.get(NONCE_COOKIE, "")
    if not nonce.startswith("un_") or len(nonce) > 64:
        nonce = new_secret("un_")
    merchant, address = found
    response = pages.page("unsubscribe/page.html", status, state="ask", merchant=merchant, address=address,
                          token=token, form_token=forms.issue(rt, _subject(token, nonce)), expired=status == 403)
    secure = rt.config.public_url.startswith("https://") or request.headers.get("X-Forwarded-Proto") == "https"
    response.set_cookie(NONCE_COOKIE, nonce, max_age=forms.FORM_MAX_AGE, path="/unsubscribe/", httponly=True,
                        samesite="Lax", secure=secure)
    return response


@bp.get("/unsubscribe/<token>")
@public  # the signed token in the path is the credential: checked by flint.mail.service
async def get_unsubscribe(token: str):
    rt = runtime()
    found = await _target(rt, token)
    return _ask(rt, token, found) if found else _invalid()


@bp.post("/unsubscribe/<token>")
@public  # the token; the page's form also its form token (a one-click POST has none: RFC 8058)
async def post_unsubscribe(token: str):
    rt = runtime()
    form = await request.form  # read first: an answer before the body is read may cut the connection
    found = await _target(rt, token)
    if found is None:
        return _invalid()
    if form.get("List-Unsubscribe") != ONE_CLICK:
        try:
            forms.check(rt, form.get("form_token"), _subject(token, request.cookies.get(NONCE_COOKIE, "")))
        except FlintError:
            return _ask(rt, token, found, 403)
    await mail.unsubscribe(rt, token)
    merchant, address = found
    return pages.page("unsubscribe/page.html", 200, state="done", merchant=merchant, address=address)
