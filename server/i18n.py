"""Buyer-facing languages: Babel gettext catalogues for Jinja2's i18n extension, chosen per
request from Accept-Language. Catalogues are read from the .po files at start (no build step)."""
from __future__ import annotations

import io
from functools import lru_cache

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations

from flint import datafiles

TRANSLATIONS_DIR = datafiles.hosted_pages() / "translations"
DEFAULT_LOCALE = "en"
LOCALES = ("en", "de", "fr")


def N_(text: str) -> str:
    """Marks a buyer- or merchant-facing text for the catalogues (gettext_noop): the code keeps the
    English text; pages translate it when they show it."""
    return text


@lru_cache(maxsize=None)
def translations(locale: str) -> NullTranslations:
    po = TRANSLATIONS_DIR / locale / "LC_MESSAGES" / "messages.po"
    if locale == DEFAULT_LOCALE or not po.exists():
        return NullTranslations()
    with po.open("rb") as handle:
        catalog = read_po(handle, locale=locale)
    compiled = io.BytesIO()
    write_mo(compiled, catalog)
    compiled.seek(0)
    return Translations(compiled)


def negotiate(accept_language: str | None) -> str:
    """The best of our locales for an Accept-Language header (q-values honoured)."""
    if not accept_language:
        return DEFAULT_LOCALE
    ranked: list[tuple[float, int, str]] = []
    for position, part in enumerate(accept_language.split(",")):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        ranked.append((-quality, position, tag.strip()))
    for negative_quality, _, tag in sorted(ranked):
        if negative_quality >= 0:
            break
        language = tag.split("-")[0].split("_")[0].lower()
        if language in LOCALES:
            return language
    return DEFAULT_LOCALE
