"""Sign-in pages for a merchant's staff: /login, /logout and /account. Plain HTML forms with CSRF
tokens; the session cookie is HttpOnly, SameSite=Lax, and Secure whenever Flint is reached over HTTPS."""
from __future__ import annotations

import unicodedata
from urllib.parse import unquote, urlsplit

from quart import Blueprint, Response, redirect, request

from flint.accounts import service
from flint.errors import FlintError
from flint.http import pages
from flint.http.auth import public
from flint.http.context import client_address, runtime
from flint.ids import new_secret
from flint.runtime import Runtime
from flint.security import CSRF_SALT

bp = Blueprint("accounts", __name__)

SESSION_COOKIE = "flint_session"
LOGIN_COOKIE = "flint_login"  # a nonce the sign-in form's token is bound to (login CSRF)
CSRF_MAX_AGE = 2 * 3600


def _secure(rt: Runtime) -> bool:
    return (request.scheme == "https" or request.headers.get("X-Forwarded-Proto") == "https"
            or rt.config.public_url.startswith("https://"))


def _cookie(response: Response, rt: Runtime, name: str, value: str, max_age: int) -> None:
    response.set_cookie(name, value, max_age=max_age, path="/", httponly=True, samesite="Lax", secure=_secure(rt))


MAX_NEXT = 2048


def _unsafe(ch: str) -> bool:
    # Browsers drop TAB, CR and LF anywhere in a URL and trim spaces and controls around it, so
    # "/<TAB>/evil.example" arrives as "//evil.example"; and they read "\\" as "/". None of these
    # belongs in a path Flint sends itself to.
    return ch == "\\" or ch.isspace() or unicodedata.category(ch)[0] in "CZ"


def _same_origin_path(target: str) -> bool:
    if not target.startswith("/") or target.startswith("//"):
        return False
    parts = urlsplit(target)  # no "//": no netloc, so nothing here can raise
    return not parts.scheme and not parts.netloc


def safe_next(target: str | None) -> str | None:
    """Where to go after signing in: only a path on Flint itself (no open redirect), checked as
    given and once more percent-decoded (whatever decodes it next must not find another site)."""
    if not target or len(target) > MAX_NEXT or any(_unsafe(ch) for ch in target):
        return None
    if not _same_origin_path(target) or not _same_origin_path(unquote(target)):
        return None
    if any(_unsafe(ch) for ch in unquote(urlsplit(target).path)):
        return None
    return target


def csrf_token(rt: Runtime, subject: str) -> str:
    return rt.signer.dumps(CSRF_SALT, {"s": subject})


def check_csrf(rt: Runtime, token: str | None, subject: str) -> None:
    """A form is accepted only with a token signed for this browser's session (or sign-in nonce)."""
    try:
        payload = rt.signer.loads(CSRF_SALT, token or "", CSRF_MAX_AGE, kind="form_token")
    except FlintError:
        payload = None
    if not isinstance(payload, dict) or payload.get("s") != subject or not subject:
        raise FlintError(403, "form_token_invalid", "This form has expired. Reload the page and try again.")


async def signed_in(rt: Runtime) -> service.Current | None:
    """Who this request's cookie signs in: ``.session_id``, ``.merchant`` and ``.staff`` (the member,
    with their ``role``), also a tuple whose first two items are (session id, merchant); or None."""
    return await service.current(rt, request.cookies.get(SESSION_COOKIE))


def _login_page(rt: Runtime, nonce: str, status: int = 200, error: str | None = None, email: str = "",
                next_path: str | None = None) -> Response:
    response = pages.page("accounts/login.html", status, error=error, email=email, next_path=next_path or "",
                     csrf=csrf_token(rt, "login:" + nonce))
    _cookie(response, rt, LOGIN_COOKIE, nonce, 1800)
    return response


@bp.get("/login")
@public
async def get_login():
    rt = runtime()
    next_path = safe_next(request.args.get("next"))
    if await signed_in(rt) is not None:
        return redirect(next_path or "/dashboard", 303)
    return _login_page(rt, new_secret("ln_"), next_path=next_path)


@bp.post("/login")
@public
async def post_login():
    rt = runtime()
    form = await request.form
    nonce = request.cookies.get(LOGIN_COOKIE, "")
    check_csrf(rt, form.get("csrf_token"), "login:" + nonce if nonce else "")
    email, password = form.get("email", "")[:254], form.get("password", "")[:1024]
    next_path = safe_next(form.get("next"))
    try:
        done = await service.sign_in(rt, email, password, client_address())
    except FlintError as refused:
        if refused.status not in (401, 429):
            raise
        response = _login_page(rt, nonce, refused.status, error=refused.detail, email=email, next_path=next_path)
        for name, value in refused.headers.items():
            response.headers[name] = value
        return response
    response = redirect(next_path or "/dashboard", 303)
    _cookie(response, rt, SESSION_COOKIE, done.token, service.SESSION_SECONDS)
    response.delete_cookie(LOGIN_COOKIE, path="/")
    return response


@bp.get("/account")
@public
async def get_account():
    rt = runtime()
    found = await signed_in(rt)
    if found is None:
        return redirect("/login?next=/account", 303)
    return pages.page("accounts/account.html", account=found.merchant, member=found.staff,
                      csrf=csrf_token(rt, found.session_id))


@bp.post("/logout")
@public
async def post_logout():
    rt = runtime()
    found = await signed_in(rt)
    form = await request.form
    if found is not None:
        check_csrf(rt, form.get("csrf_token"), found.session_id)
        await service.sign_out(rt, found.session_id)
    response = redirect("/login", 303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response
