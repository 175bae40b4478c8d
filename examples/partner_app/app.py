"""Risk Check: a partner app for Flint, small enough to read in ten minutes. It does the four things
every Flint app does:

1. Install with OAuth 2.0 and PKCE: ``GET /install`` sends the merchant to Flint's consent page,
   ``GET /callback`` trades the code for tokens and keeps them per installation.
2. Call Flint's API with an installation's token, refreshing it when it runs out (``GET /orders``).
3. Receive Flint's webhooks, verified with the Standard Webhooks library (``POST /webhooks``,
   shown at ``GET /events``).
4. Answer the ``checkout.before_payment`` hook (``POST /hook``): check the field it added to the
   checkout (the buyer confirms being 18 or older), block orders over a limit, annotate the others
   with a risk score.

``registration(public_url)`` is what the app registers with Flint (``POST /v1/apps``), including the
checkbox it adds to every checkout of the merchants who install it (``checkout_fields``).

Everything is kept in memory: a real app keeps its tokens in a database, encrypted.
"""
from __future__ import annotations

import asyncio
import logging
import secrets
import time
import warnings
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from datetime import datetime, timezone
from urllib.parse import urlsplit

import httpx
from quart import Quart, Response, redirect, render_template, request, session
from standardwebhooks import Webhook, WebhookVerificationError

with warnings.catch_warnings(record=True):  # Authlib warns at import that it prefers "httpx2" to httpx
    from authlib.integrations.httpx_client import AsyncOAuth2Client, OAuthError

log = logging.getLogger("examples.partner_app")

APP_NAME = "Risk Check"
SCOPES = "orders:read payments:read events:read"
BLOCK_OVER = 50_000  # minor units: $500.00
KEEP = 50  # webhook events and hook calls shown
WEBHOOK_EVENTS = ["order.*", "payment.*"]
# The field the app adds to the checkout of every merchant that installs it (docs/api.md 14). Flint
# shows it, marked as this app's, and sends its value back in the hook's ``fields``.
AGE_FIELD = "age_confirmed"
CHECKOUT_FIELDS = [{"key": AGE_FIELD, "label": "I am 18 or older", "type": "checkbox", "required": True}]
AGE_MESSAGE = "Please confirm you are 18 or older."


def registration(public_url: str) -> dict:
    """The ``POST /v1/apps`` body for this app reached at ``public_url`` (its developer's secret key
    registers it: ``python -m examples.partner_app.register``)."""
    public_url = public_url.rstrip("/")
    return {"name": APP_NAME, "redirect_uris": [f"{public_url}/callback"], "scopes": SCOPES.split(),
            "webhook_url": f"{public_url}/webhooks", "webhook_events": WEBHOOK_EVENTS,
            "hook_url": f"{public_url}/hook", "hooks": ["checkout.before_payment"],
            "checkout_fields": CHECKOUT_FIELDS}


def decide(call: dict, block_over: int) -> dict:
    """The one action this app answers a ``checkout.before_payment`` call with. ``call["fields"]`` holds
    the buyer's values for this app's own fields only. Flint already refuses a required box left
    unticked; the app checks again itself, since it answers for the age check: anything but a ticked
    box (a missing field too) is a ``field_error``, shown to the buyer at the box."""
    fields = call.get("fields") if isinstance(call.get("fields"), dict) else {}
    if fields.get(AGE_FIELD) is not True:
        return {"type": "field_error", "field": AGE_FIELD, "message": AGE_MESSAGE}
    order = call.get("order") or {}
    if int(order.get("amount_total", 0)) > block_over:
        limit = money(block_over, order.get("currency", "usd"))
        return {"type": "block", "message": f"Orders over {limit} need a phone call first."}
    return {"type": "annotate", "data": {"risk_score": risk_score(order, block_over), "checked_by": "partner_app"}}


@dataclass
class Installation:
    """What the app knows about one merchant that installed it (Flint's token response, kept)."""
    installation_id: str
    merchant_id: str
    scope: str = ""
    access_token: str = ""
    refresh_token: str = ""
    expires_at: float = 0.0  # time.time() when the access token stops working
    lock: asyncio.Lock = field(default_factory=asyncio.Lock, repr=False)

    def keep(self, token: dict) -> None:
        # Refresh tokens rotate: the one just used is spent (presenting it again would make Flint end
        # the whole grant), so the newest always replaces it.
        self.access_token, self.refresh_token = token["access_token"], token["refresh_token"]
        self.expires_at = time.time() + int(token["expires_in"])
        self.scope = token.get("scope", self.scope)


class NotInstalled(Exception):
    """Flint no longer accepts this installation's tokens: the merchant uninstalled the app."""


def money(minor: int, currency: str) -> str:
    """50000, "usd" -> "$500.00"."""
    digits = {"jpy": 0, "krw": 0, "kwd": 3, "bhd": 3}.get(currency.lower(), 2)
    value = f"{minor / 10 ** digits:,.{digits}f}"
    symbol = {"usd": "$", "eur": "€", "gbp": "£", "jpy": "¥"}.get(currency.lower())
    return f"{symbol}{value}" if symbol else f"{value} {currency.upper()}"


def risk_score(order: dict, block_over: int) -> int:
    """0-100: simply how close the order comes to the limit. A real app would look at much more."""
    return max(0, min(100, int(order.get("amount_total", 0)) * 100 // max(block_over, 1)))


def short_id(full_id: str) -> tuple[str, str]:
    """"mer_4f9Kq2..." -> ("mer_4f9Kq2", "...the rest"): what the pages show of an id, and what they
    keep for screen readers, copy and paste and the title attribute (the whole id stays in the page)."""
    full_id = str(full_id)
    prefix, _, rest = full_id.partition("_")
    keep = len(prefix) + 1 + 6 if rest else len(full_id)
    return (full_id, "") if len(full_id) <= keep + 2 else (full_id[:keep], full_id[keep:])


def shown_fields(values: dict) -> str:
    """The buyer's answers to this app's fields as its pages show them: "I am 18 or older: yes"."""
    labels = {spec["key"]: spec["label"] for spec in CHECKOUT_FIELDS}
    shown = []
    for key, value in values.items():
        if key in labels:
            answer = ("yes" if value else "no") if isinstance(value, bool) else str(value)
            shown.append(f"{labels[key]}: {answer}")
    return "; ".join(shown)


def create_partner_app(flint_url: str, client_id: str, client_secret: str, webhook_secret: str, *,
                       public_url: str, flint_public_url: str | None = None, block_over: int = BLOCK_OVER) -> Quart:
    """The app, for the Flint API at ``flint_url`` (browsers are sent to ``flint_public_url``, by
    default the same) and reached itself at ``public_url``, whose ``/callback`` is the redirect URI
    registered with the app. Raises ValueError for a webhook secret that is not ``whsec_...``."""
    flint_url, public_url = flint_url.rstrip("/"), public_url.rstrip("/")
    authorize_url = f"{(flint_public_url or flint_url).rstrip('/')}/oauth/authorize"
    token_url = f"{flint_url}/oauth/token"
    verifier = Webhook(webhook_secret)  # the app's webhook_secret signs webhooks and hook calls alike

    installations: dict[str, Installation] = {}
    # merchant_id -> the merchant's name, as Flint's latest token answer told it (kept after an
    # uninstall, so the events of a merchant that left still read by name).
    merchant_names: dict[str, str] = {}
    merchant_of: dict[str, str] = {}  # installation_id -> merchant_id (hook calls carry only the former)
    events: deque[dict] = deque(maxlen=KEEP)
    hook_calls: deque[dict] = deque(maxlen=KEEP)
    seen: OrderedDict[str, None] = OrderedDict()  # webhook-ids, to drop redeliveries

    app = Quart(__name__)
    app.secret_key = secrets.token_bytes(32)  # signs the session cookie; new on every start
    app.config.update(SESSION_COOKIE_NAME="partner_app_session", SESSION_COOKIE_SAMESITE="Lax",
                      SESSION_COOKIE_SECURE=public_url.startswith("https:"), MAX_CONTENT_LENGTH=1024 * 1024)
    clients: dict[str, httpx.AsyncClient] = {}

    def oauth() -> AsyncOAuth2Client:
        if "oauth" not in clients:
            clients["oauth"] = AsyncOAuth2Client(
                client_id, client_secret, scope=SCOPES, redirect_uri=f"{public_url}/callback",
                code_challenge_method="S256", token_endpoint_auth_method="client_secret_basic", timeout=10)
        return clients["oauth"]

    def api() -> httpx.AsyncClient:
        if "api" not in clients:
            clients["api"] = httpx.AsyncClient(base_url=flint_url, timeout=10)
        return clients["api"]

    @app.after_serving
    async def close_clients() -> None:
        for client in clients.values():
            await client.aclose()

    @app.after_request
    async def security_headers(response: Response) -> Response:
        response.headers["Content-Security-Policy"] = ("default-src 'self'; form-action 'self'; base-uri 'none'; "
                                                       "object-src 'none'; frame-ancestors 'none'")
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Cache-Control"] = "no-store"
        return response

    @app.context_processor
    def ids() -> dict:
        return {"merchant_names": merchant_names, "short_id": short_id}

    async def page(template: str, status: int = 200, **context) -> tuple[str, int]:
        return await render_template(template, app_name=APP_NAME, **context), status

    def merchant_words(merchant_id: str) -> str:
        """A merchant in a sentence: "Acme Coffee (mer_...)", or "The merchant mer_..." unnamed."""
        name = merchant_names.get(merchant_id)
        return f"{name} ({merchant_id})" if name else f"The merchant {merchant_id}"

    async def message(status: int, title: str, text: str) -> tuple[str, int]:
        return await page("message.html", status, title=title, message=text)

    # -- 1. Installing: OAuth 2.0 authorization code with PKCE -----------------------------------------

    @app.get("/")
    async def index():
        return await page("index.html", installations=list(installations.values()), limit=money(block_over, "usd"),
                          age_label=CHECKOUT_FIELDS[0]["label"], now=time.time())

    @app.get("/install")
    async def install():
        if request.host != urlsplit(public_url).netloc:  # the cookie must be set where /callback lands
            return redirect(f"{public_url}/install")
        code_verifier = secrets.token_urlsafe(48)  # the authorization request carries only its SHA-256
        url, state = oauth().create_authorization_url(authorize_url, code_verifier=code_verifier)
        # Both wait for /callback in this browser's session cookie (signed, so they cannot be swapped).
        session["install"] = {"state": state, "code_verifier": code_verifier}
        return redirect(url)

    def keep(installation: Installation, token: dict) -> None:
        """Keep a token answer (an install's or a refresh's): the tokens, and the merchant's name.
        Flint names the merchant in every token answer (``merchant_name``, docs/api.md 10), so a merchant
        renamed on Flint reads by its new name from the next refresh on. An answer without a usable
        name (an older Flint) leaves what the app knew; a merchant never named is shown as "Merchant"
        and a short id (the whole id in the title, for support)."""
        installation.keep(token)
        name = token.get("merchant_name")
        same_merchant = token.get("merchant_id", installation.merchant_id) == installation.merchant_id
        if isinstance(name, str) and name.strip() and same_merchant:
            merchant_names[installation.merchant_id] = name.strip()[:100]

    @app.get("/callback")
    async def callback():
        pending = session.pop("install", None)
        if not pending or not secrets.compare_digest(request.args.get("state", ""), pending["state"]):
            return await message(400, "Install link expired",
                                 "This answer does not match an install started in this browser. Please start again.")
        if request.args.get("error") == "access_denied":
            return await message(200, "Not installed", "The install was declined on Flint, so nothing was installed.")
        if "error" in request.args or "code" not in request.args:
            refused = request.args.get("error", "no code")[:60]
            return await message(400, "Not installed", f"Flint refused the install: {refused}.")
        try:
            token = await oauth().fetch_token(token_url, code=request.args["code"], state=pending["state"],
                                              code_verifier=pending["code_verifier"])
        except (OAuthError, httpx.HTTPError) as error:
            log.warning("code exchange failed: %s", error)
            return await message(502, "Not installed", "Flint did not accept the install code. Please start again.")
        installation = installations.setdefault(token["installation_id"],
                                                Installation(token["installation_id"], token["merchant_id"]))
        keep(installation, token)  # installed again while installed: the same installation, new tokens
        merchant_of[installation.installation_id] = installation.merchant_id
        log.info("installed on %s (%s)", installation.merchant_id, installation.installation_id)
        return await page("installed.html", installation=installation)

    # -- 2. Calling Flint's API with an installation's token -------------------------------------------

    async def access_token(installation: Installation, stale: str | None = None) -> str:
        """A live access token; refreshed a minute before it expires, or when Flint refused ``stale``.
        One refresh at a time per installation: two with the same refresh token would end the grant."""
        async with installation.lock:
            if installation.access_token == stale or time.time() > installation.expires_at - 60:
                try:
                    keep(installation, await oauth().refresh_token(token_url, refresh_token=installation.refresh_token))
                    log.info("refreshed the tokens of %s", installation.installation_id)
                except OAuthError as error:  # invalid_grant: uninstalled, or the grant was revoked
                    installations.pop(installation.installation_id, None)
                    raise NotInstalled(error.error) from None
        return installation.access_token

    async def flint_get(installation: Installation, path: str, **params) -> dict:
        token = await access_token(installation)
        answer = await api().get(path, params=params, headers={"Authorization": f"Bearer {token}"})
        if answer.status_code == 401:  # expired or revoked early: refresh once and try again
            token = await access_token(installation, stale=token)
            answer = await api().get(path, params=params, headers={"Authorization": f"Bearer {token}"})
        answer.raise_for_status()
        return answer.json()

    @app.get("/orders")
    async def orders():
        wanted = request.args.get("installation") or next(reversed(installations), None)
        installation = installations.get(wanted or "")
        if installation is None:
            return await message(404, "Not installed", "Install the app on a Flint merchant first.")
        try:
            listed = await flint_get(installation, "/v1/orders", limit=20)
        except NotInstalled:
            return await message(410, "Uninstalled", f"{merchant_words(installation.merchant_id)} uninstalled the app.")
        except (OAuthError, httpx.HTTPError) as error:
            log.warning("GET /v1/orders failed: %s", error)
            return await message(502, "Flint did not answer", "Flint could not list the orders just now.")
        rows = []
        for o in listed["data"]:
            # This app's entry is the one its annotation marked; the buyer's answers to its fields are
            # kept there by Flint, under "fields".
            mine = next((v for v in o["extension_data"].values()
                         if isinstance(v, dict) and v.get("checked_by") == "partner_app"), {})
            fields = mine.get("fields") if isinstance(mine.get("fields"), dict) else {}
            rows.append({"id": o["id"], "status": o["status"], "total": money(o["amount_total"], o["currency"]),
                         "risk": mine.get("risk_score"), "fields": shown_fields(fields)})
        return await page("orders.html", installation=installation, orders=rows)

    # -- 3. Webhooks: verify, then deduplicate (Flint delivers at least once) --------------------------

    @app.post("/webhooks")
    async def webhooks():
        try:
            event = verifier.verify(await request.get_data(), dict(request.headers))
        except (WebhookVerificationError, ValueError) as error:  # ValueError: a malformed header or body
            log.warning("webhook rejected: %s", error)
            return Response("invalid signature\n", 401, content_type="text/plain")
        webhook_id = request.headers["webhook-id"]  # the event's id, the same on every retry
        if webhook_id not in seen:
            seen[webhook_id] = None
            if len(seen) > 10_000:
                seen.popitem(last=False)
            if isinstance(event.get("installation_id"), str) and isinstance(event.get("merchant_id"), str):
                merchant_of[event["installation_id"]] = event["merchant_id"]
            events.appendleft({"received_at": datetime.now(timezone.utc), "id": webhook_id, "type": event.get("type"),
                               "installation_id": event.get("installation_id"), "merchant_id": event.get("merchant_id"),
                               "order_id": event.get("order_id")})
            if event.get("type") == "app.uninstalled":  # its tokens are dead: forget them
                installations.pop(event.get("installation_id"), None)
        return Response(status=204)

    @app.get("/events")
    async def events_page():
        return await page("events.html", events=list(events), hook_calls=list(hook_calls))

    # -- 4. The checkout.before_payment hook: answer within 2 s, or Flint goes on without us ----------

    @app.post("/hook")
    async def hook():
        try:
            call = verifier.verify(await request.get_data(), dict(request.headers))
        except (WebhookVerificationError, ValueError) as error:
            log.warning("hook call rejected: %s", error)
            return Response("invalid signature\n", 401, content_type="text/plain")
        action = decide(call, block_over)
        order = call.get("order") or {}
        fields = call.get("fields") if isinstance(call.get("fields"), dict) else {}
        hook_calls.appendleft({"received_at": datetime.now(timezone.utc), "order_id": order.get("id"),
                               "installation_id": call.get("installation_id"),
                               "merchant_id": merchant_of.get(str(call.get("installation_id"))),
                               "channel": (call.get("checkout") or {}).get("channel"),
                               "fields": shown_fields(fields), "answer": action["type"]})
        return {"actions": [action]}

    @app.get("/healthz")
    async def healthz():
        return {"status": "ok"}

    return app
