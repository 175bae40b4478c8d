"""Card input: validated, reduced to what may be kept (brand, last4, expiry), and never
printable. The full number and CVC live only in memory for the processor call."""
from __future__ import annotations

import re
from dataclasses import dataclass

from flint import clock
from flint.errors import FlintError, invalid


def luhn_valid(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def brand_of(digits: str) -> str:
    two, four, six = int(digits[:2]), int(digits[:4]), int(digits[:6])
    if digits[0] == "4":
        return "visa"
    if 51 <= two <= 55 or 222100 <= six <= 272099:
        return "mastercard"
    if two in (34, 37):
        return "amex"
    if four == 6011 or two == 65 or 644 <= int(digits[:3]) <= 649:
        return "discover"
    if 3528 <= four <= 3589:
        return "jcb"
    if two in (36, 38) or 300 <= int(digits[:3]) <= 305:
        return "diners"
    if two == 62:
        return "unionpay"
    return "unknown"


@dataclass(frozen=True)
class Card:
    number: str  # digits only
    exp_month: int
    exp_year: int
    cvc: str

    # Never let a card leak through a log line, a traceback or a debugger's repr.
    def __repr__(self) -> str:
        return f"Card(brand={self.brand!r}, last4={self.last4!r}, exp={self.exp_month:02d}/{self.exp_year})"

    __str__ = __repr__

    @property
    def brand(self) -> str:
        return brand_of(self.number)

    @property
    def last4(self) -> str:
        return self.number[-4:]


def parse_card(number: str, exp_month: int, exp_year: int, cvc: str, param: str = "card") -> Card:
    card, problems = check_card(number, exp_month, exp_year, cvc, param)
    if card is None:
        raise problems[0]
    return card


def check_card(number: str, exp_month: int, exp_year: int, cvc: str,
               param: str = "card") -> tuple[Card | None, list[FlintError]]:
    """The card, or every reason it is refused (number, expiry and CVC are judged apart, so a buyer who
    got all three wrong hears about all three at once)."""
    problems: list[FlintError] = []
    digits = re.sub(r"[\s-]", "", number)
    # isascii: str.isdigit() also admits '²' or '٤', which int() and the Luhn sum then choke on (a 500).
    if not digits.isascii() or not digits.isdigit() or not 12 <= len(digits) <= 19 or not luhn_valid(digits):
        problems.append(invalid("invalid_card_number", "The card number is not a valid card number.",
                                f"{param}.number"))
    full_year = exp_year + 2000 if 0 <= exp_year < 100 else exp_year
    now = clock.now()
    if not 1 <= exp_month <= 12:
        problems.append(invalid("invalid_expiry_month", "The expiry month must be between 1 and 12.",
                                f"{param}.exp_month"))
    elif not now.year <= full_year <= now.year + 50:
        problems.append(invalid("invalid_expiry_year", "The card's expiry year is invalid or in the past.",
                                f"{param}.exp_year"))
    elif (full_year, exp_month) < (now.year, now.month):
        problems.append(invalid("invalid_expiry_year", "The card's expiry date is in the past.", f"{param}.exp_year"))
    # The CVC's length follows the brand (4 for Amex); with no readable number, 3 or 4 digits pass here.
    readable = digits.isascii() and digits.isdigit() and luhn_valid(digits)
    lengths = ({4} if brand_of(digits) == "amex" else {3}) if readable else {3, 4}
    if not cvc.isascii() or not cvc.isdigit() or len(cvc) not in lengths:
        problems.append(invalid("invalid_cvc", "The card's security code is invalid.", f"{param}.cvc"))
    if problems:
        return None, problems
    return Card(number=digits, exp_month=exp_month, exp_year=full_year, cvc=cvc), []
