"""Currencies and amounts. Money is always an integer in the currency's minor unit.

The currency list and exponents come from ISO 4217 itself (the ``iso4217`` package, built from
the maintenance agency's published table), not a hand-typed table: CLDR's "digits" (Babel)
differ from ISO's exponent for IDR, COP, HUF, IQD and others, and the API reference (docs/api.md) speaks ISO.
Babel is used for what CLDR is for: formatting an amount for a buyer's locale.
"""
from __future__ import annotations

import copy
from decimal import Decimal
from functools import lru_cache

from babel import Locale
from babel.numbers import NumberPattern, parse_pattern
from iso4217 import Currency

from flint.errors import invalid

# Stripe's ceiling: 8 digits of minor units ($999,999.99). Far below 2**53, so amounts are
# exact in the widget's JavaScript too.
MAX_AMOUNT = 99_999_999

# ISO 4217 "fund" codes: units of account and settlement variants, not money a buyer pays in.
# (Metals, SDR, test and "no currency" codes have no exponent in the table and drop out anyway.)
FUND_CODES = frozenset({"BOV", "CHE", "CHW", "CLF", "COU", "MXV", "USN", "UYI", "UYW"})


@lru_cache(maxsize=1)
def _exponents() -> dict[str, int]:
    return {c.code.lower(): c.exponent for c in Currency if c.exponent is not None and c.code not in FUND_CODES}


def supported_currencies() -> frozenset[str]:
    return frozenset(_exponents())


def exponent(currency: str) -> int:
    return _exponents()[currency.lower()]


def check_currency(currency: str, param: str = "currency") -> str:
    if currency.lower() != currency or currency not in supported_currencies():
        raise invalid("currency_invalid", f"'{currency}' is not a supported lowercase ISO 4217 currency code.", param)
    return currency


@lru_cache(maxsize=256)
def _currency_pattern(locale: str, digits: int) -> tuple[Locale, NumberPattern]:
    parsed = Locale.parse(locale)
    # A copy: Babel hands out shared pattern objects, and this one gets our own decimals.
    pattern = copy.copy(parse_pattern(parsed.currency_formats["standard"]))
    pattern.frac_prec = (digits, digits)  # ISO's exponent, not CLDR's
    return parsed, pattern


def format_amount(amount: int, currency: str, locale: str = "en") -> str:
    """Human form in the buyer's locale with ISO's decimals, e.g. 1234 usd → "$12.34",
    1234 jpy → "¥1,234", 1234 kwd → "KWD 1.234", 123456 idr (de) → "1.234,56 IDR"."""
    digits = exponent(currency)
    parsed, pattern = _currency_pattern(str(locale), digits)
    return pattern.apply(Decimal(amount).scaleb(-digits), parsed, currency=currency.upper(), currency_digits=False)
