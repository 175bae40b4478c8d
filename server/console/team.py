"""The console's Team page and the invitation page (docs/api.md 15).

``/dashboard/team`` (owners: team:read, team:write): the members with their role and since when, the
pending invitations with ``Revoke``, ``Remove`` per member, and the invite form (``Email``, ``Role``,
``Invite``) whose answer shows the one-time link once, in a read-only box named ``Invitation link``.
Every action is flint.staff.service's own verb with the signed-in member as ``by`` (the service checks
the role and the merchant: another merchant's member or invitation is a 404). Each form carries a
single-use token bound to the web session (flint.forms): a forged or missing one is 403 and changes
nothing, and the same form sent twice (a double click, a reload) acts once. Below, ``Activity``: the
merchant's audit trail (flint.audit, through staff.service.activity: owners only), newest first, 25 a
page by keyset (``?activity_after=aud_...``): when, who (a member's email, else the actor), what. As the
rest of the page, it shows no email of a person removed or invited (their ids and roles only).

``/join/<token>`` is for a person not signed in yet: who invites them to which merchant with which role,
a ``Password`` and ``Join``; accepting signs them in (accounts.start_session) and sends them to the
console. Its form token is bound to the invitation and to a nonce cookie of this browser (a page
from another site cannot post it). A link used, revoked, expired or unknown is a readable page (410 or
404) and changes nothing.
"""
from __future__ import annotations

from quart import Blueprint, Response, redirect, request

from flint import clock
from flint.accounts import service as accounts
from flint.audit.models import Entry
from flint.console import routes
from flint.console.routes import PREFIX, SESSION_COOKIE
from flint.console.service import Viewer
from flint.errors import FlintError
from flint.forms import service as forms
from flint.http import pages
from flint.http.auth import public
from flint.http.context import runtime
from flint.ids import new_secret
from flint.merchants import store as merchant_store
from flint.runtime import Runtime
from flint.staff import service as staff
from flint.staff import store as staff_store
from flint.staff.models import ROLES, Invitation

bp = Blueprint("console_team", __name__)

TEAM = f"{PREFIX}/team"
JOIN_COOKIE = "flint_join"  # this browser's nonce, which the invitation page's form token is bound to
JOIN_COOKIE_SECONDS = 2 * 3600  # as long as a form token lives (flint.forms.FORM_MAX_AGE)
ROLE_LABELS = {"owner": "Owner", "developer": "Developer", "support": "Support"}
ROLE_HINTS = {"owner": "everything, including the team", "developer": "everything but the team",
              "support": "orders, refunds and payment links; no secrets"}
NOTICES = {
    "removed": "The member was removed and signed out.",
    "revoked": "The invitation was withdrawn: its link no longer works.",
    "replayed": "This form was already sent: nothing was done twice. An invitation link is shown only "
                "once; to get a new one, invite the person again.",
}


# -- cookies, as flint.web.accounts sets them (a surface beside this one, which this one may not import) ---

def _secure(rt: Runtime) -> bool:
    return (request.scheme == "https" or request.headers.get("X-Forwarded-Proto") == "https"
            or rt.config.public_url.startswith("https://"))


def _cookie(response: Response, rt: Runtime, name: str, value: str, max_age: int) -> None:
    response.set_cookie(name, value, max_age=max_age, path="/", httponly=True, samesite="Lax", secure=_secure(rt))


# -- the Team page -------------------------------------------------------------------------------------------

def _since(at: str) -> str:
    return (clock.public(at) or at)[:10]


def _listed(items: object) -> str:
    return ", ".join(str(item) for item in items) if isinstance(items, list) and items else "none"


def activity_details(entry: Entry) -> str:
    """What an Activity row adds to its words, from the entry's recorded changes (never a secret)."""
    changed = entry.changed
    if entry.action == "settings.updated":
        parts = []
        if "allowed_origins" in changed:
            origins = changed["allowed_origins"]
            parts.append(f"origins added: {_listed(origins.get('added'))}; removed: {_listed(origins.get('removed'))}")
        if "brand_color" in changed:
            parts.append(f"brand colour {changed['brand_color'].get('from')} to {changed['brand_color'].get('to')}")
        if "receipts" in changed:
            parts.append("emailed receipts " + ("on" if changed["receipts"].get("to") else "off"))
        return "; ".join(parts)
    if entry.action in ("staff.invited", "staff.invitation_revoked", "staff.removed"):
        return f"as {ROLE_LABELS.get(changed.get('role', ''), changed.get('role', ''))}"
    if entry.action == "payment_link.sent":
        return f"link {entry.object_id or ''}, email {changed.get('email_id', '')}"
    if entry.action == "webhook_delivery.retried":
        return f"{changed.get('event_type', '')} to endpoint {changed.get('endpoint_id', '')}"
    if entry.action == "installation.update_approved":
        added = changed.get("added") or {}
        return f"app {changed.get('app_id', '')}; scopes added: {_listed(added.get('scopes'))}"
    return ""


async def _team_page(who: Viewer, status: int = 200, *, error: str | None = None, notice: str | None = None,
                     invited: tuple[Invitation, str] | None = None, email: str = "", role: str = "support",
                     field: str | None = None, activity_after: str | None = None) -> Response:
    rt = runtime()
    assert who.member is not None
    members = await staff.list_team(rt, who.member)  # team:read, in the service
    invitations = await staff.list_invitations(rt, who.member)
    activity = await staff.activity(rt, who.member, activity_after)  # team:read too
    link = f"{rt.config.public_url}/join/{invited[1]}" if invited else None
    return routes._render(  # (the console's one way to render a page)
        "console/team.html", who, "team", status, members=members, invitations=invitations,
        roles=ROLES, role_labels=ROLE_LABELS, role_hints=ROLE_HINTS, since=_since, error=error, notice=notice,
        invited=invited[0] if invited else None, invitation_link=link, email=email,
        role=role if role in ROLES else "support", field=field,
        invite_token=forms.issue(rt, who.session_id), activity=activity, activity_details=activity_details,
        activity_paged=bool(activity_after),
        row_tokens={item.id: forms.issue(rt, who.session_id) for item in [*members, *invitations]})


async def _signed_in() -> Viewer | Response:
    who = await routes._viewer()
    if who is None or who.member is None:
        return routes._to_sign_in()
    return who


@bp.get(TEAM)
@public  # the signed-in person's web session (cookie), checked here; signed out: to /login
async def get_team():
    who = await _signed_in()
    if isinstance(who, Response):
        return who
    try:
        return await _team_page(who, notice=NOTICES.get(request.args.get("notice", "")),
                                activity_after=(request.args.get("activity_after") or "")[:100] or None)
    except FlintError as error:
        return routes._refused(who, "team", error)  # (403 role_forbidden: developers, support)


async def _spend(who: Viewer, form) -> tuple[str, dict | None] | Response:
    """The form's single-use token, spent: (nonce, None) the first time; (nonce, the earlier use) when
    the same form comes again. A missing or forged token: 403, nothing done."""
    try:
        return await forms.spend_token(runtime(), form.get("form_token"), who.session_id)
    except FlintError as refused:
        if refused.status != 403:
            raise
        try:
            return await _team_page(who, 403, error="This form has expired. Nothing was changed: try again.")
        except FlintError as error:
            return routes._refused(who, "team", error)


def _replayed(earlier: dict) -> Response:
    return redirect(earlier.get("outcome_url") or f"{TEAM}?notice=replayed", 303)


@bp.post(f"{TEAM}/invitations")
@public  # the signed-in person's web session (cookie) and the form's token, checked here
async def post_invite():
    form = await request.form  # read first: an answer before the body is read may cut the connection
    who = await _signed_in()
    if isinstance(who, Response):
        return who
    spent = await _spend(who, form)
    if isinstance(spent, Response):
        return spent
    nonce, earlier = spent
    if earlier is not None:
        return _replayed(earlier)
    email, role = form.get("email", "")[:254], form.get("role", "")[:20]
    rt = runtime()
    assert who.member is not None
    try:
        invitation, token = await staff.invite(rt, who.member, email, role)
    except FlintError as error:
        if error.status not in (400, 409):
            return routes._refused(who, "team", error)
        return await _team_page(who, error.status, error=error.detail, email=email, role=role,
                                field=error.param or "email")
    # A replay of this form says the link was shown once; the link itself is never stored.
    await forms.remember(rt, nonce, f"{TEAM}?notice=replayed")
    return await _team_page(who, invited=(invitation, token))


@bp.post(f"{TEAM}/invitations/<invitation_id>/revoke")
@public  # the signed-in person's web session (cookie) and the form's token, checked here
async def post_revoke(invitation_id: str):
    form = await request.form
    who = await _signed_in()
    if isinstance(who, Response):
        return who
    spent = await _spend(who, form)
    if isinstance(spent, Response):
        return spent
    nonce, earlier = spent
    if earlier is not None:
        return _replayed(earlier)
    assert who.member is not None
    try:
        await staff.revoke_invitation(runtime(), who.member, invitation_id[:100])
    except FlintError as error:
        if error.status != 404:
            return routes._refused(who, "team", error)
        return await _team_page(who, 404, error="There is no such invitation in this team.")
    outcome = f"{TEAM}?notice=revoked"
    await forms.remember(runtime(), nonce, outcome)
    return redirect(outcome, 303)


@bp.post(f"{TEAM}/members/<staff_id>/remove")
@public  # the signed-in person's web session (cookie) and the form's token, checked here
async def post_remove(staff_id: str):
    form = await request.form
    who = await _signed_in()
    if isinstance(who, Response):
        return who
    spent = await _spend(who, form)
    if isinstance(spent, Response):
        return spent
    nonce, earlier = spent
    if earlier is not None:
        return _replayed(earlier)
    assert who.member is not None
    try:
        removed = await staff.remove(runtime(), who.member, staff_id[:100])
    except FlintError as error:
        if error.status == 404:
            return await _team_page(who, 404, error="There is no such member in this team.")
        if error.code == "last_owner":
            return await _team_page(who, 409, error=error.detail)
        return routes._refused(who, "team", error)
    if removed.id == who.member.id:
        # Removing oneself (another owner remains) ends one's own sessions too.
        response = redirect("/login", 303)
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response
    outcome = f"{TEAM}?notice=removed"
    await forms.remember(runtime(), nonce, outcome)
    return redirect(outcome, 303)


# -- the invitation page -------------------------------------------------------------------------------------

async def _invitation(token: str) -> tuple[Invitation, str, str]:
    """The pending invitation, its merchant's name and the inviter's email (errors as
    staff.invitation_for: 404 unknown, 410 used, revoked or expired)."""
    rt = runtime()
    invitation = await staff.invitation_for(rt, token)
    async with rt.db.read() as conn:
        merchant = await merchant_store.select_merchant(conn, invitation.merchant_id)
        inviter = await staff_store.select_member(conn, invitation.merchant_id, invitation.invited_by)
    return invitation, merchant.name if merchant else "", inviter.email if inviter else ""


def _join_subject(invitation: Invitation, nonce: str) -> str:
    return f"join:{invitation.id}:{nonce}"


def _unusable(error: FlintError) -> Response:
    if error.status not in (404, 410):
        raise error
    return pages.page("accounts/join.html", error.status, refused=error)


async def _join_page(token: str, found: tuple[Invitation, str, str], status: int = 200,
                     error: str | None = None) -> Response:
    rt = runtime()
    invitation, merchant_name, inviter = found
    nonce = request.cookies.get(JOIN_COOKIE, "")
    if not nonce.startswith("jn_") or len(nonce) > 64:
        nonce = new_secret("jn_")
    signed_in = await accounts.current(rt, request.cookies.get(SESSION_COOKIE))
    response = pages.page(
        "accounts/join.html", status, invitation=invitation, merchant_name=merchant_name, inviter=inviter,
        role_label=ROLE_LABELS.get(invitation.role, invitation.role), role_hint=ROLE_HINTS.get(invitation.role, ""),
        token=token, form_token=forms.issue(rt, _join_subject(invitation, nonce)), error=error,
        signed_in_as=signed_in.staff.email if signed_in else None)
    _cookie(response, rt, JOIN_COOKIE, nonce, JOIN_COOKIE_SECONDS)
    return response


@bp.get("/join/<token>")
@public  # the invitation link is the credential: checked here
async def get_join(token: str):
    try:
        found = await _invitation(token)
    except FlintError as error:
        return _unusable(error)
    return await _join_page(token, found)


@bp.post("/join/<token>")
@public  # the invitation link and the form's token (bound to this browser), checked here
async def post_join(token: str):
    rt = runtime()
    form = await request.form  # read first: an answer before the body is read may cut the connection
    try:
        found = await _invitation(token)
    except FlintError as error:
        return _unusable(error)
    try:
        forms.check(rt, form.get("form_token"), _join_subject(found[0], request.cookies.get(JOIN_COOKIE, "")))
    except FlintError:
        return await _join_page(token, found, 403, error="This form has expired. Nothing was changed: "
                                                         "enter your password again.")
    try:
        member = await staff.accept_invitation(rt, token, form.get("password", "")[:2048])
    except FlintError as error:
        if error.status == 400:
            return await _join_page(token, found, 400, error=error.detail)
        if error.status == 409:
            return pages.page("accounts/join.html", 409, refused=error)
        return _unusable(error)
    before = await accounts.current(rt, request.cookies.get(SESSION_COOKIE))
    if before is not None:  # someone else was signed in in this browser: that session ends here
        await accounts.sign_out(rt, before.session_id)
    done = await accounts.start_session(rt, member)
    response = redirect(PREFIX, 303)
    _cookie(response, rt, SESSION_COOKIE, done.token, accounts.SESSION_SECONDS)
    response.delete_cookie(JOIN_COOKIE, path="/")
    return response
