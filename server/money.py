"""Currencies and amounts. Money is always an integer in the currency's minor unit.

The currency list and exponents come from Babel's CLDR data (ISO 4217 codes that are legal
tender somewhere today), not a hand-typed table.
"""
from __future__ import annotations

from functools import lru_cache

from babel import Locale
from babel.core import get_global
from babel.numbers import format_currency, get_currency_precision, get_territory_currencies

from .errors import invalid

# Stripe's ceiling: 8 digits of minor units ($999,999.99). Far below 2**53, so amounts are
# exact in the widget's JavaScript too.
MAX_AMOUNT = 99_999_999


@lru_cache(maxsize=1)
def supported_currencies() -> frozenset[str]:
    codes: set[str] = set()
    for territory in get_global("territory_currencies"):
        codes.update(get_territory_currencies(territory, tender=True, non_tender=False))
    # XXX-style codes (gold, SDR, test) are not money a buyer can pay in.
    return frozenset(c.lower() for c in codes if len(c) == 3 and c.isalpha() and not c.startswith("X"))


def exponent(currency: str) -> int:
    return get_currency_precision(currency.upper())


def check_currency(currency: str, param: str = "currency") -> str:
    if currency.lower() != currency or currency not in supported_currencies():
        raise invalid("currency_invalid", f"'{currency}' is not a supported lowercase ISO 4217 currency code.", param)
    return currency


def check_amount(amount: int, param: str) -> int:
    if amount <= 0:
        raise invalid("amount_too_small", "Amounts must be positive integers in the currency's minor unit.", param)
    if amount > MAX_AMOUNT:
        raise invalid("amount_too_large", f"Amounts may not exceed {MAX_AMOUNT} minor units.", param)
    return amount


def format_amount(amount: int, currency: str, locale: str | Locale = "en") -> str:
    """Human form for pages and receipts, e.g. 1234 usd → "$12.34", 1234 jpy → "¥1,234"."""
    major = amount / (10 ** exponent(currency))
    return format_currency(major, currency.upper(), locale=locale)
