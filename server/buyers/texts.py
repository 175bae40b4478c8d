"""What the buyer reads about their details, in English: the msgids of the catalogues
(hosted_pages/translations). Pages and the card frame translate them by code or by label when they show
them; the JSON API answers the English text in each error's ``message``. Wrapped in ``N_`` so that
``pybabel extract`` finds them (hosted_pages/babel.cfg must list server/buyers/**.py)."""
from __future__ import annotations

from flint.i18n import N_

# One text per field error code (docs/api.md 14). The codes are the contract; these words may change.
MESSAGES = {
    "field_required": N_("This field is required."),
    "email_invalid": N_("Enter a valid email address."),
    "phone_invalid": N_("Enter a valid phone number, with the country code if it is not from your country."),
    "country_invalid": N_("Choose a country or region from the list."),
    "country_not_allowed": N_("We cannot ship to this country or region."),
    "address_invalid": N_("Check this address."),
    "postal_code_invalid": N_("Enter a valid postal code."),
    "state_invalid": N_("Enter a valid state or province."),
    "city_invalid": N_("Enter a valid city."),
    "option_invalid": N_("Choose one of the options."),
    "number_invalid": N_("Enter a number, like 12 or 12.5."),
    "too_long": N_("This is too long."),
    "terms_required": N_("Accept the terms to continue."),
    "field_unknown": N_("This field is not part of this checkout."),
    # An app's hook words its own message (shown as given); this stands in only if one is missing.
    "field_error": N_("Check this field."),
}

# The accessible names of the built-in fields (docs/api.md 14), by our key; custom and app fields show
# their own label as given.
LABELS = {
    "email": N_("Email"),
    "name": N_("Full name"),
    "phone": N_("Phone"),
    "country": N_("Country or region"),
    "line1": N_("Address line 1"),
    "line2": N_("Address line 2"),
    "city": N_("City"),
    "postal_code": N_("Postal code"),
    "state": N_("State or province"),
    "terms": N_("I agree to the terms"),
    "shipping_address": N_("Shipping address"),
}

# A problem response's detail when several fields are wrong (a single one gives its own message).
SEVERAL_INVALID = N_("Some fields are invalid.")
