"""Buyer details and checkout fields (docs/api.md 14): what a checkout asks for (``Collect``, ``FieldSpec``,
``AppFieldSet``), what the buyer gave once checked (``Collected``: a ``Customer`` with ``Address``es,
custom and app field values), the problems found (``FieldErrors``), and the form tree surfaces render
(``BuyerForm`` > ``Section`` > ``Field``). Plain frozen dataclasses, no I/O: flint.buyers.service builds
them from requests and checks them."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, ClassVar

from flint.buyers.texts import SEVERAL_INVALID
from flint.errors import FlintError

REQUIREMENTS = ("required", "optional", "off")
BILLING_MODES = ("off", "country", "full")
FIELD_TYPES = ("text", "number", "checkbox", "dropdown")
DEFAULT_TEXT_LENGTH = 255
MAX_EMAIL = 254  # RFC 5321's path limit, less the brackets
MAX_NAME = 200
MAX_PHONE = 40  # formatting included; E.164 itself is at most 15 digits
# What a form's checkbox posts when ticked, and what JSON and stored values may say.
TRUE_VALUES = (True, "on", "true", "1")
FALSE_VALUES = (False, None, "", "false", "0")


@dataclass(frozen=True)
class FieldSpec:
    """A field of the merchant's own (``custom_fields``) or of an app (``checkout_fields``).
    ``options``: (value, label) pairs, dropdowns only; ``max_length``: text fields only (default 255)."""
    key: str
    label: str
    type: str
    required: bool = False
    options: tuple[tuple[str, str], ...] = ()
    max_length: int | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"key": self.key, "label": self.label, "type": self.type, "required": self.required}
        if self.type == "dropdown":
            out["options"] = [{"value": value, "label": label} for value, label in self.options]
        if self.type == "text":
            out["max_length"] = self.max_length or DEFAULT_TEXT_LENGTH
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FieldSpec:
        """From stored JSON (written by to_dict after flint.buyers.service checked it: not checked again)."""
        return cls(key=d["key"], label=d["label"], type=d["type"], required=bool(d.get("required")),
                   options=tuple((o["value"], o["label"]) for o in d.get("options") or ()),
                   max_length=d.get("max_length"))

    @classmethod
    def tuple_from_json(cls, text: str | None) -> tuple[FieldSpec, ...]:
        return tuple(cls.from_dict(d) for d in json.loads(text)) if text else ()


@dataclass(frozen=True)
class ShippingRule:
    allowed_countries: tuple[str, ...]  # ISO 3166-1 alpha-2, upper case, in the merchant's order


@dataclass(frozen=True)
class Collect:
    """Which built-in fields a checkout shows. The defaults are what a checkout asked before buyer
    details existed (an optional email and name), so sessions stored without ``collect`` keep their form."""
    email: str = "optional"  # REQUIREMENTS
    name: str = "optional"
    phone: str = "off"
    billing_address: str = "off"  # BILLING_MODES: "country" asks the country alone
    shipping_address: ShippingRule | None = None  # None: not asked; else a full address, required
    terms_url: str | None = None  # set: an "I agree to the terms" box that must be ticked

    DEFAULT: ClassVar[Collect]

    def to_dict(self) -> dict[str, Any]:
        shipping = self.shipping_address
        return {"email": self.email, "name": self.name, "phone": self.phone, "billing_address": self.billing_address,
                "shipping_address": {"allowed_countries": list(shipping.allowed_countries)} if shipping else None,
                "terms_url": self.terms_url}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Collect:
        """From stored JSON (written by to_dict after checking: not checked again)."""
        shipping = d.get("shipping_address")
        return cls(email=d.get("email", "optional"), name=d.get("name", "optional"), phone=d.get("phone", "off"),
                   billing_address=d.get("billing_address", "off"),
                   shipping_address=ShippingRule(tuple(shipping["allowed_countries"])) if shipping else None,
                   terms_url=d.get("terms_url"))

    @classmethod
    def from_json(cls, text: str | None) -> Collect:
        """NULL in the database: a session or link from before buyer details, asked the defaults."""
        return cls.from_dict(json.loads(text)) if text else cls.DEFAULT


Collect.DEFAULT = Collect()


@dataclass(frozen=True)
class Address:
    """An address as the country's format keeps it: fields it does not use are None."""
    country: str | None = None
    line1: str | None = None
    line2: str | None = None
    city: str | None = None
    postal_code: str | None = None
    state: str | None = None

    KEYS: ClassVar[tuple[str, ...]] = ("country", "line1", "line2", "city", "postal_code", "state")

    def to_dict(self) -> dict[str, str | None]:
        return {key: getattr(self, key) for key in self.KEYS}


@dataclass(frozen=True)
class Customer:
    """What the buyer gave; None where not asked or not given."""
    email: str | None = None
    name: str | None = None
    phone: str | None = None  # E.164
    billing_address: Address | None = None
    shipping_address: Address | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"email": self.email, "name": self.name, "phone": self.phone,
                "billing_address": self.billing_address.to_dict() if self.billing_address else None,
                "shipping_address": self.shipping_address.to_dict() if self.shipping_address else None}

    def to_dict_or_none(self) -> dict[str, Any] | None:
        """None when nothing was given: the order's ``customer`` stays null rather than all-null members."""
        shown = self.to_dict()
        return shown if any(value is not None for value in shown.values()) else None


@dataclass(frozen=True)
class AppFieldSet:
    """An installed app's checkout fields, as its merchant consented to them."""
    app_id: str
    app_name: str
    fields: tuple[FieldSpec, ...]


@dataclass(frozen=True)
class Collected:
    """What validate() accepted. ``custom_fields``: {key: value} for the answered fields (a checkbox is
    always answered, True or False; text and dropdown values are strings, numbers decimal strings);
    ``app_fields``: {app_id: {key: value}} likewise, for apps with an answered field."""
    customer: Customer
    custom_fields: dict[str, Any]
    app_fields: dict[str, dict[str, Any]]
    terms_accepted: bool


@dataclass(frozen=True)
class FieldProblem:
    param: str  # the dotted path, which is also the form input's name (customer.billing_address.city)
    code: str  # a field error code of docs/api.md 14 (texts.MESSAGES), or a card's
    message: str  # English, or an app's own words for field_error


class FieldErrors(FlintError):
    """400 ``invalid_field`` naming every bad field at once: ``param`` is the first's, ``errors`` lists all
    (in form order, so the first is the one a page focuses)."""

    def __init__(self, problems: list[FieldProblem]) -> None:
        assert problems, "FieldErrors needs at least one problem"
        self.problems = list(problems)
        first = self.problems[0]
        super().__init__(400, "invalid_field", first.message if len(self.problems) == 1 else SEVERAL_INVALID,
                         param=first.param,
                         extra={"errors": [{"param": p.param, "code": p.code, "message": p.message}
                                           for p in self.problems]})


# The form tree (form_fields). Templates of both buyer surfaces render it as is; nothing in it is HTML.

@dataclass(frozen=True)
class Field:
    """One input.

    - ``name``: the input's name, the dotted path of docs/api.md 14 (``customer.billing_address.line1``,
      ``custom_fields.gift_note``, ``app_fields.<app_id>.<key>``, ``terms_accepted``); also the ``param``
      of its errors.
    - ``id``: the input's id, ``name`` with every "." replaced by "-"; its error paragraph is ``error_id``
      (``<id>-error``), for ``aria-describedby``.
    - ``label``: the accessible name. When ``translate`` is true it is an English msgid (texts.LABELS) to
      pass through gettext; when false it is the merchant's or app's own text, shown as given (escaped).
    - ``kind``: "email", "text", "tel", "select", "checkbox" or "number". A "number" holds a decimal
      string (12.50): render it as a text input with ``inputmode="decimal"``, since ``type=number``
      refuses decimals without ``step="any"`` and mangles them in some locales.
    - ``autocomplete``: the WHATWG autofill token ("email", "shipping postal-code", ...), or None (omit
      the attribute) for fields no browser knows.
    - ``required``: show it as required (``required`` attribute, no "optional" mark). An address field
      is marked required only when every country the select offers requires it (the street, and for
      a few shipping countries more): the server checks the rest per country on submit, and a script
      may mark them from ``BuyerForm.country_required`` as the country changes.
    - ``options``: for "select", (value, label) pairs in display order; labels are shown as given
      (country names are already in the page's language). The list has no empty choice: when ``value``
      is empty, render a placeholder option (value "") first so that nothing is chosen silently.
    - ``value``: what the input shows (the buyer's last submission, or a prefill). A checkbox is ticked
      when ``checked``.
    - ``error``: the message to show at the field (already in the page's language or the app's words),
      or None; set: ``aria-invalid="true"`` and the message in ``error_id``.
    - ``max_length``: the ``maxlength`` attribute, or None.
    - ``terms_url``: for the terms checkbox, the link its label carries; else None.
    - ``app_name``: for an app's field, the app's name as given (also on its Section); else None.
    """
    name: str
    label: str
    kind: str
    autocomplete: str | None = None
    required: bool = False
    translate: bool = True
    options: tuple[tuple[str, str], ...] = ()
    value: str = ""
    error: str | None = None
    max_length: int | None = None
    terms_url: str | None = None
    app_name: str | None = None

    @property
    def id(self) -> str:
        return self.name.replace(".", "-")

    @property
    def error_id(self) -> str:
        return f"{self.id}-error"

    @property
    def checked(self) -> bool:
        return self.kind == "checkbox" and self.value in TRUE_VALUES


@dataclass(frozen=True)
class Section:
    """A group of fields, in page order.

    - ``id``: "contact", "billing", "shipping", "custom", "app-<app_id>" or "terms" (for CSS and tests).
    - ``legend``: an English msgid to translate ("Shipping address") when the section is a group with a
      name (render a fieldset with this legend), else None.
    - ``app_name``: for an app's section, the app's name as given (say the fields are provided by it,
      e.g. "Provided by %(app)s"); else None.
    - ``fields``: the inputs, in order.
    """
    id: str
    legend: str | None
    fields: tuple[Field, ...]
    app_name: str | None = None


@dataclass(frozen=True)
class BuyerForm:
    """Everything a buyer surface shows before the card fields.

    - ``sections``: contact (email, name, phone), billing, shipping, custom, one per app, terms; a
      section with no field is left out.
    - ``country_fields``: {country code: the address keys its format uses besides the country, in the
      format's order ("line1", "line2", "city", "postal_code", "state")}, for every country a full
      address on this form can have: a script may hide the others (the page works without it).
    - ``country_required``: {country code: the address keys the country requires}, likewise.
    """
    sections: tuple[Section, ...]
    country_fields: dict[str, list[str]] = field(default_factory=dict)
    country_required: dict[str, list[str]] = field(default_factory=dict)

    @property
    def fields(self) -> list[Field]:
        return [f for section in self.sections for f in section.fields]
