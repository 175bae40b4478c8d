"""The loader's own words (widget/src/flint.js on the merchant's page): the card frame's title, the
hosted fallback link and why a session cannot be paid, in the buyer's language. They travel in the
client session answer as ``messages`` (text id -> text), because the loader is one static file for
every buyer; it keeps minimal English of its own for when that answer never comes."""
from __future__ import annotations

from flint.i18n import N_, negotiate, translations

# The ids are the loader's (and, for a closed session, the stable codes of ``unavailable``).
LOADER_TEXTS = {
    "frame_title": N_("Secure card payment"),
    "fallback_text": N_("The payment form could not load here."),
    "fallback_link": N_("Continue to secure checkout"),
    "unavailable": N_("This checkout cannot be shown."),
    "session_expired": N_("This checkout has expired. Please start again."),
    "order_already_paid": N_("This order has already been paid."),
    "order_authorized": N_("A payment for this order is authorized and awaits capture."),
    "order_canceled": N_("This order was canceled."),
    "session_not_open": N_("This checkout is closed."),
}


def loader_messages(accept_language: str | None) -> dict[str, str]:
    """Every text of LOADER_TEXTS in the best of Flint's languages for an Accept-Language header."""
    gettext = translations(negotiate(accept_language)).gettext
    return {text_id: gettext(text) for text_id, text in LOADER_TEXTS.items()}
