"""The shop's Quart application: a product page, a checkout page with Flint's embedded widget (in
the shop's colours, asking for an email and a shipping address), a success page that reads the
order's status back from Flint's API, and a webhook receiver (``POST /webhooks``, verified with the
``standardwebhooks`` package) whose latest events ``GET /webhooks`` lists.

Everything it knows about payments comes from Flint's public HTTP API, called with the merchant's
secret key from this server (never from the buyer's browser). The browser only ever sees the
session's ``client_token``, in the options the checkout page mounts the widget with.
"""
from __future__ import annotations

import logging
import re
import secrets
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
from quart import Quart, Response, redirect, render_template, request
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from .webhooks import Inbox, Rejected

log = logging.getLogger("examples.shop")

SHOP_NAME = "Demo Coffee Roasters"
PRODUCT = {
    "name": "Espresso beans, 1 kg",
    "line_item_name": "Espresso beans 1 kg",
    "description": "A chocolatey blend of washed Brazilian and Ethiopian beans, roasted for espresso.",
    "unit_amount": 2400,
    "currency": "usd",
}
MAX_QUANTITY = 10
MAX_EMAIL = 254
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")  # a first look only: Flint checks the address properly
# What the shop needs from the buyer to send the beans and the receipt (docs/api.md 14): an email,
# required, and a shipping address in the three countries it ships to. Flint shows and checks the
# fields in its card frame and keeps them on the order as ``customer``.
COLLECT = {"email": "required", "shipping_address": {"allowed_countries": ["DE", "FR", "US"]}}
# The card frame takes the shop's look from the custom properties of its stylesheet:
# appearance key (widget/PROTOCOL.md) -> the shop.css variable it comes from.
APPEARANCE_FROM_CSS = {"colorPrimary": "--accent", "colorText": "--ink", "colorBackground": "--paper",
                       "borderRadius": "--radius", "fontFamily": "--font"}
STYLESHEET = Path(__file__).parent / "static" / "shop.css"
# Flint's events are a few KB; nothing this shop accepts is anywhere near this.
MAX_BODY_BYTES = 1024 * 1024
# Flint's ids are a prefix and base62 characters (server/ids.py); anything else is not a session.
_SESSION_ID = re.compile(r"^cs_[0-9A-Za-z]{1,64}$")
# Minor-unit exponents (ISO 4217) and symbols for the currencies this shop may show.
_EXPONENTS = {"usd": 2, "eur": 2, "gbp": 2, "jpy": 0, "kwd": 3}
_SYMBOLS = {"usd": "$", "eur": "€", "gbp": "£", "jpy": "¥"}


def format_money(amount: int, currency: str) -> str:
    """2400, "usd" -> "$24.00"; currencies without a symbol here -> "24.000 KWD"."""
    exponent = _EXPONENTS.get(currency.lower(), 2)
    value = f"{amount / 10 ** exponent:,.{exponent}f}"
    symbol = _SYMBOLS.get(currency.lower())
    return f"{symbol}{value}" if symbol else f"{value} {currency.upper()}"


class FlintAPIError(Exception):
    """A call to Flint's API that did not answer 2xx (``status`` None: Flint was unreachable)."""

    def __init__(self, method: str, path: str, status: int | None, code: str | None, detail: str):
        super().__init__(f"{method} {path}: {status or 'unreachable'} {code or ''} {detail}".strip())
        self.status, self.code, self.detail = status, code, detail

    @property
    def not_found(self) -> bool:
        return self.status == 404


def css_variables(css: str) -> dict[str, str]:
    """The custom properties set in a stylesheet's ``:root`` rules: {"--accent": "#7a3e12", ...}."""
    found: dict[str, str] = {}
    for block in re.findall(r":root\s*\{([^}]*)\}", re.sub(r"/\*.*?\*/", "", css, flags=re.S)):
        for name, value in re.findall(r"(--[\w-]+)\s*:\s*([^;]+)", block):
            found[name] = " ".join(value.split())
    return found


def shop_appearance(css: str) -> dict[str, str]:
    """The widget's ``appearance`` variables in the shop's own colours, radius and font, read from its
    stylesheet so the two cannot drift apart. A variable the stylesheet lacks is left to Flint."""
    variables = css_variables(css)
    return {key: variables[name] for key, name in APPEARANCE_FROM_CSS.items() if name in variables}


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def create_shop(flint_api_url: str, secret_key: str, flint_public_url: str | None = None,
                webhook_secret: str | None = None, recovery: dict[str, Any] | None = None) -> Quart:
    """The shop, talking to Flint at ``flint_api_url`` with ``secret_key``; buyers' browsers load
    Flint's widget from ``flint_public_url`` (default: ``flint_api_url``). With ``webhook_secret``
    (the endpoint's ``whsec_...``) it accepts Flint's webhooks at ``POST /webhooks``; without it
    that answers 503. A secret that is not ``whsec_`` + base64 raises ValueError here. ``recovery``:
    the checkout sessions' drop-off recovery (docs/api.md 7 and 16), e.g. ``{"enabled": True, "email":
    True}`` (``flint demo`` asks for it); None: none."""
    api_url = flint_api_url.rstrip("/")
    public_url = (flint_public_url or flint_api_url).rstrip("/")
    flint_origin = _origin(public_url)
    inbox = Inbox(webhook_secret) if webhook_secret else None
    appearance = {"variables": shop_appearance(STYLESHEET.read_text(encoding="utf-8"))}

    app = Quart(__name__, template_folder="templates", static_folder="static")
    app.config["SHOP_FLINT_API_URL"] = api_url
    app.config["SHOP_FLINT_PUBLIC_URL"] = public_url
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    clients: dict[str, httpx.AsyncClient] = {}

    def flint() -> httpx.AsyncClient:
        # Made on first use as well as at startup, so the app also works under a bare test client.
        if "flint" not in clients:
            clients["flint"] = httpx.AsyncClient(
                base_url=api_url, timeout=httpx.Timeout(10.0, connect=5.0),
                headers={"Authorization": f"Bearer {secret_key}", "User-Agent": "flint-demo-shop/1"})
        return clients["flint"]

    @app.before_serving
    async def _open_client() -> None:
        flint()

    @app.after_serving
    async def _close_client() -> None:
        client = clients.pop("flint", None)
        if client is not None:
            await client.aclose()

    async def call(method: str, path: str, **kwargs: Any) -> dict:
        try:
            response = await flint().request(method, path, **kwargs)
        except httpx.HTTPError as error:
            log.warning("Flint API unreachable", extra={"method": method, "path": path,
                                                        "error": type(error).__name__})
            raise FlintAPIError(method, path, None, None, "Flint could not be reached.") from None
        if response.is_success:
            try:
                return response.json()
            except ValueError:
                log.warning("Flint API answered non-JSON", extra={"method": method, "path": path,
                                                                  "status": response.status_code})
                raise FlintAPIError(method, path, response.status_code, None, "Unreadable answer.") from None
        try:
            problem = response.json()
        except ValueError:
            problem = {}
        code = problem.get("code") if isinstance(problem, dict) else None
        detail = problem.get("detail", "") if isinstance(problem, dict) else ""
        log.warning("Flint API error", extra={"method": method, "path": path, "status": response.status_code,
                                              "code": code, "request_id": response.headers.get("Request-Id")})
        raise FlintAPIError(method, path, response.status_code, code, str(detail))

    async def page(template: str, status: int = 200, **context: Any) -> Response:
        nonce = secrets.token_urlsafe(16)
        body = await render_template(template, shop_name=SHOP_NAME, nonce=nonce, **context)
        response = Response(body, status=status, content_type="text/html; charset=utf-8")
        # What a merchant page embedding Flint needs: Flint's script, its frame and its API.
        response.headers["Content-Security-Policy"] = (
            f"default-src 'self'; script-src 'self' 'nonce-{nonce}' {flint_origin}; "
            f"style-src 'self' 'unsafe-inline'; img-src 'self' data: {flint_origin}; "
            f"frame-src {flint_origin}; connect-src 'self' {flint_origin}; font-src 'self' {flint_origin}; "
            "form-action 'self'; base-uri 'none'; object-src 'none'; frame-ancestors 'none'")
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "strict-origin-when-cross-origin"
        # Pages carry a client_token or an order's state: never cache them.
        response.headers["Cache-Control"] = "no-store"
        return response

    async def error_page(status: int, title: str, message: str) -> Response:
        return await page("message.html", status=status, title=title, message=message)

    async def upstream_failure(error: FlintAPIError) -> Response:
        return await error_page(
            502, "Payments are unavailable",
            "We could not reach our payment provider just now, so nothing was charged. "
            "Please try again in a moment.")

    def shop_origin() -> str:
        return request.host_url.rstrip("/")

    @app.get("/")
    async def index():
        return await page("index.html", title=f"{PRODUCT['name']} — {SHOP_NAME}", product=PRODUCT,
                          price=format_money(PRODUCT["unit_amount"], PRODUCT["currency"]),
                          quantities=range(1, MAX_QUANTITY + 1))

    @app.get("/healthz")
    async def healthz():
        return {"status": "ok"}

    @app.post("/checkout")
    async def checkout():
        form = await request.form
        raw = form.get("quantity") or request.args.get("quantity") or "1"
        try:
            quantity = int(raw)
        except ValueError:
            quantity = 0
        if not 1 <= quantity <= MAX_QUANTITY:
            return await error_page(400, "Please choose a quantity",
                                    f"You can buy between 1 and {MAX_QUANTITY} bags at a time.")
        # Optional: an address given here is the order's (Flint's checkout starts with it, and a checkout
        # left unpaid can be followed up by email); the checkout's own Email field has the last word.
        email = (form.get("email") or "").strip()
        if len(email) > MAX_EMAIL or (email and not _EMAIL.fullmatch(email)):
            return await error_page(400, "Please check your email address",
                                    "That does not look like an email address. You can also leave it empty.")
        origin = shop_origin()
        order: dict[str, Any] = {"currency": PRODUCT["currency"], "line_items": [
            {"name": PRODUCT["line_item_name"], "quantity": quantity, "unit_amount": PRODUCT["unit_amount"]}]}
        if email:
            order["customer_email"] = email
        body = {
            "order": order,
            "mode": "embedded",
            # Flint puts the session's id in place of the placeholder when it sends the buyer back.
            "success_url": f"{origin}/success?session_id={{CHECKOUT_SESSION_ID}}",
            "cancel_url": f"{origin}/",
            "collect": COLLECT,
            **({"recovery": recovery} if recovery else {}),
        }
        try:
            # A fresh key per form post: a retry of this same call replays, a second post buys again.
            session = await call("POST", "/v1/checkout/sessions", json=body,
                                 headers={"Idempotency-Key": f"shop-{uuid.uuid4()}"})
        except FlintAPIError as error:
            return await upstream_failure(error)
        return redirect(f"/pay/{quote(session['id'], safe='')}", 303)

    @app.get("/pay/<session_id>")
    async def pay(session_id: str):
        if not _SESSION_ID.fullmatch(session_id):
            return await error_page(404, "Checkout not found", "We could not find this checkout.")
        try:
            session = await call("GET", f"/v1/checkout/sessions/{session_id}")
        except FlintAPIError as error:
            if error.not_found:
                return await error_page(404, "Checkout not found", "We could not find this checkout.")
            return await upstream_failure(error)
        if session.get("status") == "complete":
            return redirect(f"/success?session_id={quote(session_id, safe='')}", 303)
        if session.get("status") != "open":
            return await error_page(410, "This checkout has expired",
                                    "This checkout is no longer open, and nothing was charged. "
                                    "You can start again from the shop.")
        if not session.get("client_token"):
            log.warning("open session without client_token", extra={"session_id": session_id})
            return await upstream_failure(FlintAPIError("GET", "session", 200, None, "no client_token"))
        try:
            order = await call("GET", f"/v1/orders/{quote(session['order_id'], safe='')}")
        except FlintAPIError as error:
            return await upstream_failure(error)
        # The frame shows the order summary next to its Pay button, so this page shows none of its own.
        widget = {"clientToken": session["client_token"], "appearance": appearance}
        return await page("pay.html", title=f"Checkout — {SHOP_NAME}", session=session, widget=widget,
                          total=format_money(order["amount_total"], order["currency"]),
                          flint_public_url=public_url)

    @app.get("/success")
    async def success():
        session_id = request.args.get("session_id", "")
        if not _SESSION_ID.fullmatch(session_id):
            return await error_page(404, "Order not found", "We could not find an order for this page.")
        try:
            session = await call("GET", f"/v1/checkout/sessions/{session_id}")
            order = await call("GET", f"/v1/orders/{quote(session['order_id'], safe='')}")
        except FlintAPIError as error:
            if error.not_found:
                return await error_page(404, "Order not found", "We could not find an order for this page.")
            return await upstream_failure(error)
        return await page("success.html", title=f"Your order — {SHOP_NAME}", session=session, order=order,
                          lines=_lines(order), total=format_money(order["amount_total"], order["currency"]),
                          paid=format_money(order.get("amount_paid", 0), order["currency"]))

    def plain(status: int, text: str) -> Response:
        return Response(text + "\n", status=status, content_type="text/plain; charset=utf-8")

    @app.post("/webhooks")
    async def receive_webhook():
        """Flint's deliveries: verify the signature over the exact bytes received, store, answer
        204 at once. Anything slow a real shop does with an event belongs after the answer."""
        if (request.content_length or 0) > MAX_BODY_BYTES:
            return plain(413, "too large")
        try:
            # Read in full before any answer, even the 503: an unread body would cost the sender
            # its kept-alive connection, and its next request there would fail.
            body = await request.get_data(cache=False)
        except RequestEntityTooLarge:
            return plain(413, "too large")
        if inbox is None:
            return plain(503, "webhooks not configured")
        headers = {name: value for name, value in request.headers.items()}
        try:
            received = inbox.accept(body, headers)
        except Rejected as why:
            log.warning("webhook rejected", extra={"reason": str(why),
                                                   "webhook_id": request.headers.get("webhook-id", "")[:64]})
            return plain(400, "invalid signature")
        if received is None:
            log.info("webhook redelivered", extra={"webhook_id": request.headers.get("webhook-id", "")[:64]})
        else:
            log.info("webhook received", extra={"webhook_id": received.webhook_id, "type": received.type})
        return Response(status=204)

    @app.get("/webhooks")
    async def webhooks_page():
        return await page("webhooks.html", title=f"Webhooks — {SHOP_NAME}", inbox=inbox,
                          events=inbox.latest() if inbox else [], endpoint_url=f"{shop_origin()}/webhooks")

    @app.errorhandler(404)
    async def not_found(_error):
        return await error_page(404, "Page not found", "There is no page at this address.")

    @app.errorhandler(405)
    async def method_not_allowed(_error):
        return await error_page(405, "Not allowed", "This page cannot be used that way.")

    @app.errorhandler(Exception)
    async def unexpected(error: Exception):
        if isinstance(error, HTTPException):
            return await error_page(error.code or 500, error.name, error.description or "")
        log.exception("shop error")
        return await error_page(500, "Something went wrong", "Something went wrong on our side. Please try again.")

    return app


def _lines(order: dict) -> list[dict]:
    currency = order["currency"]
    return [{"name": item["name"], "quantity": item["quantity"],
             "unit": format_money(item["unit_amount"], currency),
             "amount": format_money(item["unit_amount"] * item["quantity"], currency)}
            for item in order.get("line_items", [])]
