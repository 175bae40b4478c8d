"""The buyer form both surfaces render (the hosted page, without JavaScript too, and the widget's card
frame): one tree of sections and fields (flint.buyers.models.BuyerForm), and the way back from the
hosted form's dotted input names to what validate() reads."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flint.buyers import address
from flint.buyers.models import (
    DEFAULT_TEXT_LENGTH,
    MAX_EMAIL,
    MAX_NAME,
    MAX_PHONE,
    AppFieldSet,
    BuyerForm,
    Collect,
    Field,
    FieldSpec,
    Section,
)
from flint.buyers.texts import LABELS

# The WHATWG autofill tokens of the address fields (prefixed "billing " or "shipping "), so that a
# browser fills a whole address in one go.
ADDRESS_AUTOCOMPLETE = {"country": "country", "line1": "address-line1", "line2": "address-line2",
                        "city": "address-level2", "postal_code": "postal-code", "state": "address-level1"}
KINDS = {"text": "text", "number": "number", "checkbox": "checkbox", "dropdown": "select"}


def form_fields(collect: Collect, custom: tuple[FieldSpec, ...], apps: list[AppFieldSet], locale: str,
                values: dict[str, str], errors: dict[str, str]) -> BuyerForm:
    """What a surface renders before the card fields. ``values``: input name -> what the input shows
    (the buyer's last submission, a prefilled email); ``errors``: input name -> the message to show
    there (already translated, or an app's words). See BuyerForm, Section and Field for each attribute."""
    def value(name: str) -> str:
        given = values.get(name)
        return "" if given is None else str(given)

    def built_in(name: str, key: str, kind: str, autocomplete: str | None, required: bool, *,
                 options: tuple[tuple[str, str], ...] = (), max_length: int | None = None) -> Field:
        return Field(name=name, label=LABELS[key], kind=kind, autocomplete=autocomplete, required=required,
                     options=options, value=value(name), error=errors.get(name), max_length=max_length)

    contact = []
    for key, kind, autocomplete, limit in (("email", "email", "email", MAX_EMAIL), ("name", "text", "name", MAX_NAME),
                                           ("phone", "tel", "tel", MAX_PHONE)):
        mode = getattr(collect, key)
        if mode != "off":
            contact.append(built_in(f"customer.{key}", key, kind, autocomplete, mode == "required", max_length=limit))

    def address_fields(which: str, *, full: bool, only: tuple[str, ...] | None) -> list[Field]:
        prefix, base = ("billing", "customer.billing_address") if which == "billing" else \
            ("shipping", "customer.shipping_address")
        shown = [built_in(f"{base}.country", "country", "select", f"{prefix} country", True,
                          options=address.country_options(locale, only))]
        if full:
            # Required: what every country offered requires (the street). A mark only the selected
            # country needs would block a page without JavaScript once the buyer picks another one; a
            # script may add them from country_required. The server checks per country on submit.
            required = set.intersection(*(set(address.country_format(c)[1]) for c in only or address.countries()))
            shown += [built_in(f"{base}.{key}", key, "text", f"{prefix} {ADDRESS_AUTOCOMPLETE[key]}", key in required,
                               max_length=address.MAX_LENGTHS[key])
                      for key in ("line1", "line2", "city", "postal_code", "state")]
        return shown

    sections = [Section("contact", None, tuple(contact))]
    full_countries: set[str] = set()
    if collect.billing_address != "off":
        full = collect.billing_address == "full"
        sections.append(Section("billing", None, tuple(address_fields("billing", full=full, only=None))))
        if full:
            full_countries |= address.countries()
    if collect.shipping_address is not None:
        allowed = collect.shipping_address.allowed_countries
        sections.append(Section("shipping", LABELS["shipping_address"],
                                tuple(address_fields("shipping", full=True, only=allowed))))
        full_countries |= set(allowed)
    sections.append(Section("custom", None, tuple(_own_field(spec, "custom_fields", value, errors) for spec in custom)))
    sections += [Section(f"app-{app.app_id}", None,
                         tuple(_own_field(spec, f"app_fields.{app.app_id}", value, errors, app.app_name)
                               for spec in app.fields),
                         app_name=app.app_name) for app in apps]
    if collect.terms_url is not None:
        sections.append(Section("terms", None, (Field(
            name="terms_accepted", label=LABELS["terms"], kind="checkbox", required=True, value=value("terms_accepted"),
            error=errors.get("terms_accepted"), terms_url=collect.terms_url),)))
    formats = {country: address.country_format(country) for country in sorted(full_countries)}
    return BuyerForm(sections=tuple(s for s in sections if s.fields),
                     country_fields={country: list(used) for country, (used, _) in formats.items()},
                     country_required={country: list(required) for country, (_, required) in formats.items()})


def _own_field(spec: FieldSpec, base: str, value, errors: dict[str, str], app_name: str | None = None) -> Field:
    """A merchant's or an app's field: its label is shown as given, never looked up in a catalogue."""
    name = f"{base}.{spec.key}"
    return Field(name=name, label=spec.label, kind=KINDS[spec.type], autocomplete=None, required=spec.required,
                 translate=False, options=spec.options, value=value(name), error=errors.get(name),
                 max_length=(spec.max_length or DEFAULT_TEXT_LENGTH) if spec.type == "text" else None,
                 app_name=app_name)


def flatten_form(form: Mapping[str, str]) -> dict[str, Any]:
    """The hosted form's dotted input names as the nested dict validate() reads. Card inputs
    (card_number, expiry, cvc), the form token and any other name are left out: card data never
    travels with the buyer's details."""
    customer: dict[str, Any] = {}
    custom: dict[str, str] = {}
    apps: dict[str, dict[str, str]] = {}
    for name, given in form.items():
        head, _, rest = name.partition(".")
        if head == "customer" and rest:
            key, _, sub = rest.partition(".")
            if key in ("billing_address", "shipping_address") and sub and "." not in sub:
                customer.setdefault(key, {})[sub] = given
            elif key in ("email", "name", "phone") and not sub:
                customer[key] = given
        elif head == "custom_fields" and rest:
            custom[rest] = given  # a key with a dot in it is nobody's field: validate() says field_unknown
        elif head == "app_fields" and "." in rest:
            app_id, _, key = rest.partition(".")
            apps.setdefault(app_id, {})[key] = given
    # An unticked checkbox posts nothing: absent means false.
    return {"customer": customer, "custom_fields": custom, "app_fields": apps,
            "terms_accepted": form.get("terms_accepted", False)}
