"""What buyer pages and the card frame say for each code, in English: the pages translate these
through the catalogues (hosted_pages/translations), the frame gets them translated from its page."""
from __future__ import annotations


def _(text: str) -> str:
    return text  # marks texts for extraction; the templates translate them


# Buyer-facing wording for codes (translated in the templates via gettext).
MESSAGES = {
    "authentication_failed": _("We could not authenticate your payment. Please try another card."),
    "authentication_abandoned": _("The card check was not completed. Please try again."),
    "payment_attempt_expired": _("The card check took too long. Please try again."),
    "payment_in_progress": _("A payment for this order is already in progress. Please wait a moment."),
    "processor_unavailable": _("We could not reach the card network. You will not be charged for this attempt; please try again in a minute."),
    "invalid_card_number": _("Your card number is not valid."),
    "invalid_expiry_month": _("Enter the expiry date as MM / YY."),
    "invalid_expiry_year": _("Your card's expiry date is in the past or not valid."),
    "invalid_cvc": _("Your card's security code is not valid."),
    "payment_failed": _("The payment failed. Please try another card."),
    # A form refused before any attempt (docs/api.md 14): the alert above it; each field says what is wrong.
    "invalid_field": _("Please check the fields marked below."),
}


# What a buyer is told when the card was authorized and not charged (capture "manual", docs/api.md 17):
# never "paid" until the merchant captures. "%(merchant)s" is the merchant's name.
AUTHORIZED = _("Your card was authorized. You will be charged when %(merchant)s confirms your order.")


# The card frame's own texts (the frame page hands them to frame.js, translated).
FRAME_TEXTS = {
    "card_number_incomplete": _("Your card number is incomplete."),
    "expiry_incomplete": _("Enter the expiry date as MM / YY."),
    "expiry_past": _("Your card's expiry date is in the past."),
    "cvc_incomplete": _("Your card's security code is incomplete."),
    "paid": _("Payment complete. Thank you!"),
    # A manual-capture payment (docs/api.md 17): the card is authorized, nothing is charged yet. The frame
    # gets it with the merchant's name in place (routes.get_card_frame); the receipt page says the same.
    "authorized": AUTHORIZED,
    "network_error": _("We could not reach Flint. Check your connection and try again."),
    "challenge_text": _("Your bank asks you to confirm this payment of {amount} with your card ending in {last4}."),
    "client_token_expired": _("This checkout has expired. Please start again."),
    "client_token_invalid": _("This checkout link is not valid."),
    "session_expired": _("This checkout has expired. Please start again."),
    "order_already_paid": _("This order has already been paid."),
    "order_authorized": AUTHORIZED,  # the frame of an order whose payment is authorized (docs/api.md 17)
    "order_canceled": _("This order was canceled."),
    "session_not_open": _("This checkout is closed."),
}

# Past a card testing limit (plural-aware: ngettext with the number of minutes as "%(count)s").
TOO_MANY_ATTEMPTS = ("Too many payment attempts. Please try again in %(count)s minute.",
                      "Too many payment attempts. Please try again in %(count)s minutes.")
