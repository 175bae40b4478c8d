"""A queued email as the message sent (docs/api.md 16): standard-library ``EmailMessage``, a text and an
HTML part (multipart/alternative) from hosted_pages/templates/mail/, in the mail's language.

What the buyer reads comes from ``email.context``, frozen when the mail was caused, and holds only what
the checkout already showed them: the merchant's name, the order's lines and totals, the link, and on a
receipt the card's brand and last four digits (never more of a card: ``last4`` is cut to four digits
here, whatever the context holds).

Header injection is impossible by construction: every text that reaches a header (the merchant's name,
an order's reference) has its line breaks and other control characters folded to spaces first, and is
set through ``email.headerregistry`` (display names quoted, non-ASCII encoded as RFC 2047 words), whose
policy refuses a CR or LF in any header value as a last guard. A brand colour reaches a style only as a
checked ``#rrggbb``; a link only as an http(s) URL."""
from __future__ import annotations

import json
import re
import unicodedata
from datetime import UTC, datetime
from email import policy as email_policy
from email import utils as email_utils
from email.headerregistry import Address
from email.message import EmailMessage
from functools import cache
from typing import Any, Protocol

from babel.dates import format_date, format_time
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from flint import clock, datafiles, i18n, money
from flint.config import parse_mail_from
from flint.mail.models import KINDS, PAYMENT_LINK, RECEIPT, RECOVERY
from flint.merchants.branding import checked_color, text_on

TEMPLATES = datafiles.hosted_pages() / "templates"
_MAX_HEADER_TEXT = 200  # far beyond any merchant name or reference; a subject never grows without bound

# The processor's brand codes (flint.cards.brand_of) as a buyer knows them; unknown ones are capitalised.
CARD_BRANDS = {"visa": "Visa", "mastercard": "Mastercard", "amex": "American Express", "discover": "Discover",
               "jcb": "JCB", "diners": "Diners Club", "unionpay": "UnionPay"}

# Subjects, one per kind (translated through the catalogues like every buyer text).
SUBJECTS = {
    RECEIPT: i18n.N_("Your receipt from %(merchant)s for order %(reference)s"),
    RECOVERY: i18n.N_("You left your checkout at %(merchant)s"),
    PAYMENT_LINK: i18n.N_("%(merchant)s sent you a link to pay order %(reference)s"),
}


class Mail(Protocol):
    """What compose reads of a queued email (flint.mail.models.Email)."""
    kind: str
    to_address: str
    locale: str
    context: str
    message_id: str


def header_text(text: Any, limit: int = _MAX_HEADER_TEXT) -> str:
    """One line of plain text for a header: every run of whitespace (CR, LF, tabs, U+2028...) becomes a
    single space, as do control and format characters, so nothing a merchant typed can end a header line
    and start another."""
    words = "".join(" " if unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") else ch for ch in str(text)).split()
    # "=?" starts an RFC 2047 encoded word: a name spelt as one would be decoded by mail clients into
    # anything at all (an address of someone else, say), so it is broken up.
    return " ".join(words)[:limit].strip().replace("=?", "= ?")


def _link(value: Any) -> str | None:
    return value if isinstance(value, str) and value.startswith(("https://", "http://")) and \
        not any(ch.isspace() or ord(ch) < 32 for ch in value) else None


def _moment(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = clock.parse(value)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _date(value: Any, locale: str) -> str | None:
    moment = _moment(value)
    return format_date(moment.astimezone(UTC), "long", locale=locale) if moment else None


def _date_time(value: Any, locale: str) -> str | None:
    # The buyer's time zone is unknown: UTC, and said so.
    moment = _moment(value)
    if moment is None:
        return None
    moment = moment.astimezone(UTC)
    return f"{format_date(moment, 'long', locale=locale)}, {format_time(moment, 'short', locale=locale)} UTC"


def _amount(value: Any, currency: str, locale: str) -> str | None:
    return money.format_amount(value, currency, locale) if isinstance(value, int) and not isinstance(value, bool) \
        else None


def _due(order: dict[str, Any]) -> int | None:
    """What is left to pay (the button says it): the total less what was paid already."""
    total, paid = order.get("amount_total"), order.get("amount_paid") or 0
    if not isinstance(total, int) or not isinstance(paid, int) or total - paid <= 0:
        return None
    return total - paid


def view(kind: str, context: dict[str, Any], locale: str) -> dict[str, Any]:
    """What the templates show, formatted for ``locale`` (amounts through flint.money, dates through
    Babel): the templates only place it."""
    merchant = context.get("merchant") or {}
    order = context.get("order") or {}
    currency = str(order.get("currency") or "usd")
    payment = context.get("payment") or None
    brand = checked_color(merchant.get("brand_color"))  # re-checked: the last step before a style
    shown_payment = None
    if payment:
        digits = re.sub(r"\D", "", str(payment.get("last4") or ""))[-4:]
        code = str(payment.get("brand") or "")
        shown_payment = {
            "brand": CARD_BRANDS.get(code, code.capitalize() or None),
            "last4": digits or None,
            "amount": _amount(payment.get("amount"), currency, locale),
            "date": _date(payment.get("paid_at"), locale),
        }
    lines = [{"name": str(line.get("name") or ""), "quantity": int(line.get("quantity") or 1),
              "amount": _amount(line.get("amount"), currency, locale)}
             for line in order.get("lines") or [] if isinstance(line, dict)]
    return {
        "kind": kind,
        "locale": locale,
        "merchant_name": header_text(merchant.get("name") or ""),
        "brand": brand,
        "brand_text": text_on(brand),
        "reference": header_text(order.get("reference") or order.get("id") or ""),
        "total": _amount(order.get("amount_total"), currency, locale),
        "paid": _amount(order.get("amount_paid"), currency, locale),
        "due": _amount(_due(order), currency, locale),
        "lines": lines,
        "link_url": _link(context.get("link_url")),
        "payment": shown_payment,
        "expires": _date_time(context.get("expires_at"), locale),
    }


@cache
def environment(locale: str) -> Environment:
    """flint.mail's own Jinja2 environment per language (not Quart's, and no request to read a
    language from): the catalogue installed once, autoescape for .html and never for .txt."""
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(["html"], default_for_string=False),
        extensions=["jinja2.ext.i18n"],
        undefined=StrictUndefined,  # a misspelt name fails the test, never renders as nothing
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        auto_reload=False,
    )
    env.install_gettext_translations(i18n.translations(locale), newstyle=True)  # type: ignore[attr-defined]
    return env


def render(kind: str, context: dict[str, Any], locale: str, *, unsubscribe_url: str | None = None,
           to_address: str = "") -> tuple[str, str, str]:
    """(subject, text, html) of a mail of ``kind`` in ``locale``."""
    if kind not in KINDS:
        raise ValueError(f"unknown mail kind {kind!r}")
    locale = locale if locale in i18n.LOCALES else i18n.DEFAULT_LOCALE
    shown = view(kind, context, locale)
    subject = header_text(i18n.translations(locale).gettext(SUBJECTS[kind])
                          % {"merchant": shown["merchant_name"], "reference": shown["reference"]})
    env = environment(locale)
    values = {**shown, "subject": subject, "unsubscribe_url": _link(unsubscribe_url), "to_address": to_address}
    text = env.get_template(f"mail/{kind}.txt").render(values)
    html = env.get_template(f"mail/{kind}.html").render(values)
    return subject, text, html


def _sender(mail_from: str, display_name: str) -> Address:
    """config.mail_from ("addr" or "Name <addr>", checked at startup) with the merchant's name as the
    display name (the configured name when the merchant has none)."""
    configured_name, address = parse_mail_from(mail_from)
    username, _, domain = address.rpartition("@")
    return Address(display_name=display_name or header_text(configured_name), username=username, domain=domain)


def _recipient(to_address: str) -> Address:
    # flint.mail.service normalised it with email-validator; a line break or space here is refused, not folded.
    if header_text(to_address) != to_address or " " in to_address:
        raise ValueError("not an email address")
    return Address(addr_spec=to_address)


def compose(email: Mail, config: Any, *, unsubscribe_url: str | None) -> EmailMessage:
    """The message to send for ``email`` (flint.mail.models.Email), From ``config.mail_from`` under the
    merchant's name. ``unsubscribe_url`` (flint.mail.service.unsubscribe_link) is required for a recovery email
    and ignored for the others: receipts and links the buyer asked for are not mail one opts out of."""
    if email.kind == RECOVERY and not _link(unsubscribe_url):
        raise ValueError("a recovery email needs its unsubscribe URL")
    context = json.loads(email.context) if isinstance(email.context, str) else dict(email.context or {})
    recovery_url = unsubscribe_url if email.kind == RECOVERY else None
    subject, text, html = render(email.kind, context, email.locale, unsubscribe_url=recovery_url,
                                 to_address=email.to_address)
    to = _recipient(email.to_address)
    # An internationalised mailbox needs SMTPUTF8; everything else goes as 7-bit (quoted-printable bodies,
    # RFC 2047 headers), which every SMTP server takes.
    ascii_only = to.addr_spec.isascii()
    policy = email_policy.SMTP.clone(cte_type="7bit") if ascii_only else email_policy.SMTPUTF8
    message = EmailMessage(policy=policy)
    message["From"] = _sender(config.mail_from, header_text((context.get("merchant") or {}).get("name") or ""))
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = email_utils.format_datetime(clock.now().astimezone(UTC))
    message_id = header_text(email.message_id, 500)
    message["Message-ID"] = message_id if message_id.startswith("<") else f"<{message_id}>"
    # RFC 3834: no vacation or out-of-office replies to an automatic message.
    message["Auto-Submitted"] = "auto-generated"
    if recovery_url:
        # RFC 2369 + RFC 8058: mailbox providers show an unsubscribe button that POSTs
        # "List-Unsubscribe=One-Click" to this URL (flint.hosted.unsubscribe).
        message["List-Unsubscribe"] = f"<{recovery_url}>"
        message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    message.set_content(text, subtype="plain", charset="utf-8", cte="quoted-printable")
    message.add_alternative(html, subtype="html", charset="utf-8", cte="quoted-printable")
    return message
