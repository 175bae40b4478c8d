"""Rendering buyer pages: one synchronous Jinja2 environment over hosted_pages/templates.

Quart's template machinery runs Jinja in async mode, where every block and include becomes a
coroutine; our templates do no I/O, and rendering them synchronously takes a third of the time."""
from __future__ import annotations

from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from quart import Response, g

from flint import datafiles, i18n

TEMPLATES = datafiles.hosted_pages() / "templates"

environment = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=select_autoescape(["html"], default_for_string=True),
    extensions=["jinja2.ext.i18n"],
    auto_reload=False,
)
# Per request: the buyer's language (g.locale) picks the catalogue; autoescape stays on.
environment.install_gettext_callables(  # type: ignore[attr-defined]
    lambda text: i18n.translations(g.get("locale", "en")).gettext(text),
    lambda one, many, n: i18n.translations(g.get("locale", "en")).ngettext(one, many, n),
    newstyle=True,
)


def _translate_text(text: str) -> str:
    """``{{ value|translate }}``: the catalogue's translation of a text held in a variable, as a
    plain string, so autoescape still applies. (``_(variable)`` would return Markup: fine for our
    own texts, an injection for one that came from outside, such as an app's block message.)"""
    return str(i18n.translations(g.get("locale", "en")).gettext(str(text)))


environment.filters["translate"] = _translate_text


def render(name: str, **context: Any) -> str:
    return environment.get_template(name).render(g=g, **context)


def page(template: str, status: int = 200, /, **context: Any) -> Response:
    """A whole HTML page, for buyers and merchants alike (``merchant``: whose page it is, for its name
    and brand colour; none for Flint's own pages). Its security headers are set on the way out
    (http/headers.py)."""
    context.setdefault("merchant", None)
    return Response(render(template, **context), status=status, content_type="text/html; charset=utf-8")
