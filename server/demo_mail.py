"""``flint demo``'s mail catcher (docs/api.md 16): a local SMTP server (aiosmtpd) that keeps what the demo's
Flint sends, and a small page that lists it, so a first look shows the receipt of a purchase and the recovery
email of a checkout left unpaid without any mail leaving the machine.

The SMTP server listens on a free loopback port of its own, in the demo's event loop (Flint's mail worker is a
client like any other: FLINT_SMTP_URL points here). It keeps the newest MAX_MESSAGES messages in memory and
forgets them when the demo stops.

The page (its own origin, beside the shop and the partner app) lists them newest first: subject, recipient,
when; each message's page shows its headers, the links of its text part, the text part itself, and the HTML
part in a sandboxed frame. That frame loads the HTML from its own URL, whose answer carries a CSP ``sandbox``
(an opaque origin, no scripts, no forms, no plugins) and allows the mail's inline styles and nothing else: an
``srcdoc`` frame would inherit the page's own strict CSP, which refuses the inline styles mail is written in.
Links in the mail open at the top or in a new tab, as a mail client opens them."""
from __future__ import annotations

import asyncio
import itertools
import re
import secrets
import time
from collections import deque
from dataclasses import dataclass
from email import message_from_bytes
from email import policy as email_policy
from email.message import EmailMessage
from typing import Any

from jinja2 import DictLoader, Environment, select_autoescape

MAX_MESSAGES = 200  # kept in memory, newest; older ones are forgotten
MAX_MESSAGE_BYTES = 2 * 1024 * 1024  # far above any mail Flint writes
LOOPBACK = "127.0.0.1"
# The HTML part's own answer: a sandbox (opaque origin, no scripts or forms), the mail's inline styles, its
# links followed when clicked (at the top, or in a new tab), nothing loaded from anywhere.
MAIL_FRAME_SANDBOX = "allow-popups allow-popups-to-escape-sandbox allow-top-navigation-by-user-activation"
MAIL_HTML_CSP = (f"sandbox {MAIL_FRAME_SANDBOX}; default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
                 "form-action 'none'; base-uri 'none'; frame-ancestors 'self'")
_LINK = re.compile(r"https?://[^\s<>\"')\]]+")


@dataclass(frozen=True)
class Caught:
    """One message as the catcher received it."""
    number: int
    received_at: float  # wall clock (time.time())
    mail_from: str
    rcpt_tos: tuple[str, ...]
    data: bytes

    @property
    def message(self) -> EmailMessage:
        return message_from_bytes(self.data, policy=email_policy.default)  # type: ignore[return-value]

    def header(self, name: str) -> str:
        value = self.message.get(name)
        return str(value) if value is not None else ""

    def part(self, subtype: str) -> str | None:
        """The text of the ``text/<subtype>`` body, or None when the message has none."""
        body = self.message.get_body(preferencelist=(subtype,))
        if body is None or body.get_content_type() != f"text/{subtype}":
            return None
        return body.get_content()

    def links(self) -> list[str]:
        """The http(s) links of the text part, each once, in order."""
        return list(dict.fromkeys(_LINK.findall(self.part("plain") or "")))

    @property
    def shown_at(self) -> str:
        return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(self.received_at))

    @property
    def iso_at(self) -> str:
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.received_at))


class MailCatcher:
    """An SMTP server that accepts every message and keeps the newest ``limit`` (aiosmtpd handler)."""

    def __init__(self, limit: int = MAX_MESSAGES) -> None:
        self.messages: deque[Caught] = deque(maxlen=limit)
        self._numbers = itertools.count(1)
        self._server: asyncio.Server | None = None
        self.port: int | None = None

    @property
    def url(self) -> str:
        """What FLINT_SMTP_URL says to reach it."""
        assert self.port is not None, "the catcher is not started"
        return f"smtp://{LOOPBACK}:{self.port}"

    async def start(self, port: int = 0) -> MailCatcher:
        """Listen on loopback (``port`` 0: a free one the system picks), in the running event loop."""
        from aiosmtpd.smtp import SMTP

        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: SMTP(self, hostname="flint-demo-mail", enable_SMTPUTF8=True, data_size_limit=MAX_MESSAGE_BYTES),
            LOOPBACK, port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # (aiosmtpd calls it by this name)
        self.messages.append(Caught(next(self._numbers), time.time(), envelope.mail_from or "",
                                    tuple(envelope.rcpt_tos), envelope.original_content or envelope.content))
        return "250 2.0.0 OK: caught by the Flint demo"

    def newest_first(self) -> list[Caught]:
        return list(reversed(self.messages))

    def get(self, number: int) -> Caught | None:
        return next((caught for caught in self.messages if caught.number == number), None)


# -- the page ------------------------------------------------------------------------------------------------

_STYLE = """
body{margin:0;font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1f2330;background:#f4f5f8}
main{max-width:1000px;margin:0 auto;padding:20px}
h1{font-size:1.5rem;margin:0 0 8px}h2{font-size:1.1rem;margin:0 0 8px}
a{color:#3730a3}a:focus{outline:3px solid #4f46e5;outline-offset:2px}
.hint{color:#555b6a;margin:0 0 16px}
.panel{background:#fff;border-radius:10px;box-shadow:0 1px 3px rgba(0,0,0,.08);padding:16px;margin:0 0 16px;overflow-x:auto}
table{width:100%;border-collapse:collapse}th,td{text-align:left;padding:8px;border-bottom:1px solid #e3e5ec;vertical-align:top}
th{font-size:.85rem;color:#555b6a}td{overflow-wrap:anywhere}
dl{display:grid;grid-template-columns:auto 1fr;gap:4px 16px;margin:0}dt{color:#555b6a}dd{margin:0;overflow-wrap:anywhere}
pre{white-space:pre-wrap;overflow-wrap:anywhere;margin:0;font-size:.9rem}li{overflow-wrap:anywhere}
iframe{width:100%;height:640px;border:1px solid #e3e5ec;border-radius:8px;background:#fff}
"""

_LAYOUT = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{% block title %}{% endblock %} · Flint demo mail</title>
<style nonce="{{ nonce }}">{{ style|safe }}</style>
</head>
<body>
<main>
{% block main %}{% endblock %}
</main>
</body>
</html>
"""

_LIST = """{% extends "layout.html" %}
{% block title %}Mail{% endblock %}
{% block main %}
<h1>Mail sent by the Flint demo</h1>
<p class="hint">The demo's Flint sends its email to a local SMTP server ({{ smtp_url }}), which keeps the newest
{{ limit }} messages here until the demo stops: nothing leaves this machine. Reload the page to see new mail.</p>
<section class="panel" aria-labelledby="sent">
<h2 id="sent">{{ messages|length }} message{% if messages|length != 1 %}s{% endif %}, newest first</h2>
{% if messages %}
<table>
<thead><tr><th scope="col">Subject</th><th scope="col">To</th><th scope="col">Received</th></tr></thead>
<tbody>
{% for caught in messages %}
<tr><td><a href="/messages/{{ caught.number }}">{{ caught.header("Subject") or "(no subject)" }}</a></td>
<td>{{ caught.rcpt_tos|join(", ") }}</td>
<td><time datetime="{{ caught.iso_at }}">{{ caught.shown_at }}</time></td></tr>
{% endfor %}
</tbody>
</table>
{% else %}
<p>No mail yet. Buy something in the demo shop with your email for a receipt, or give the shop your email and
leave its checkout unpaid: about a minute later its recovery email arrives here.</p>
{% endif %}
</section>
{% endblock %}
"""

_MESSAGE = """{% extends "layout.html" %}
{% block title %}{{ caught.header("Subject") or "(no subject)" }}{% endblock %}
{% block main %}
<p><a href="/">All mail</a></p>
<h1>{{ caught.header("Subject") or "(no subject)" }}</h1>
<section class="panel" aria-labelledby="headers">
<h2 id="headers">Headers</h2>
<dl>
{% for name in headers %}{% if caught.header(name) %}<dt>{{ name }}</dt><dd>{{ caught.header(name) }}</dd>
{% endif %}{% endfor %}
<dt>Received</dt><dd><time datetime="{{ caught.iso_at }}">{{ caught.shown_at }}</time></dd>
</dl>
<p><a href="/messages/{{ caught.number }}/raw">The whole message as sent</a></p>
</section>
{% if links %}
<section class="panel" aria-labelledby="links">
<h2 id="links">Links in this mail</h2>
<ul>
{% for link in links %}<li><a href="{{ link }}" rel="noopener noreferrer">{{ link }}</a></li>
{% endfor %}
</ul>
</section>
{% endif %}
{% if has_html %}
<section class="panel" aria-labelledby="html">
<h2 id="html">As a mail client shows it</h2>
<iframe src="/messages/{{ caught.number }}/html" sandbox="{{ sandbox }}" title="The mail's HTML part"></iframe>
</section>
{% endif %}
{% if text is not none %}
<section class="panel" aria-labelledby="text">
<h2 id="text">Text part</h2>
<pre>{{ text }}</pre>
</section>
{% endif %}
{% endblock %}
"""

_NOT_FOUND = """{% extends "layout.html" %}
{% block title %}Not found{% endblock %}
{% block main %}
<h1>No such message</h1>
<p>The catcher keeps the newest {{ limit }} messages until the demo stops. <a href="/">All mail</a></p>
{% endblock %}
"""

_PAGES = Environment(loader=DictLoader({"layout.html": _LAYOUT, "list.html": _LIST, "message.html": _MESSAGE,
                                        "not_found.html": _NOT_FOUND}),
                     autoescape=select_autoescape(default=True, default_for_string=True))
HEADERS_SHOWN = ("From", "To", "Subject", "Date", "Message-ID", "Auto-Submitted", "List-Unsubscribe",
                 "List-Unsubscribe-Post")


def _page_headers(nonce: str) -> dict[str, str]:
    return {
        "Content-Type": "text/html; charset=utf-8",
        "Content-Security-Policy": (f"default-src 'none'; style-src 'nonce-{nonce}'; frame-src 'self'; "
                                    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"),
        "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer", "Cache-Control": "no-store",
    }


def create_catcher_app(catcher: MailCatcher):
    """The catcher's page, a Quart app (served beside the shop by ``flint demo``)."""
    from quart import Quart, Response

    app = Quart(__name__)

    def page(template: str, status: int = 200, **context: Any) -> Response:
        nonce = secrets.token_urlsafe(16)
        body = _PAGES.get_template(template).render(nonce=nonce, style=_STYLE, limit=catcher.messages.maxlen,
                                                    **context)
        return Response(body, status=status, headers=_page_headers(nonce))

    def not_found() -> Response:
        return page("not_found.html", 404)

    @app.get("/")
    async def index():
        return page("list.html", messages=catcher.newest_first(), smtp_url=catcher.url)

    @app.get("/healthz")
    async def healthz():
        return {"status": "ok"}

    @app.get("/messages/<int:number>")
    async def message(number: int):
        caught = catcher.get(number)
        if caught is None:
            return not_found()
        return page("message.html", caught=caught, headers=HEADERS_SHOWN, links=caught.links(),
                    text=caught.part("plain"), has_html=caught.part("html") is not None, sandbox=MAIL_FRAME_SANDBOX)

    @app.get("/messages/<int:number>/html")
    async def message_html(number: int):
        caught = catcher.get(number)
        shown = caught.part("html") if caught is not None else None
        if shown is None:
            return not_found()
        return Response(shown, headers={
            "Content-Type": "text/html; charset=utf-8", "Content-Security-Policy": MAIL_HTML_CSP,
            "X-Frame-Options": "SAMEORIGIN", "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer",
            "Cache-Control": "no-store"})

    @app.get("/messages/<int:number>/raw")
    async def message_raw(number: int):
        caught = catcher.get(number)
        if caught is None:
            return not_found()
        return Response(caught.data.decode("utf-8", "replace"), headers={
            "Content-Type": "text/plain; charset=utf-8", "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'", "Cache-Control": "no-store"})

    @app.errorhandler(404)
    async def unknown(_error):
        return not_found()

    return app
