"""Email to buyers (docs/api.md 16): writing mails into the outbox inside their cause's transaction, the
worker's claim and outcomes (with their events), listing, and one-click unsubscribe (RFC 8058).

Exactly once per cause: ``enqueue`` writes one row per ``cause`` (a unique key), whatever runs the cause's
transaction twice; the worker claims a row under a lease before it sends (two workers never hold one row)
and records the outcome under that lease. The one window for a second copy is a worker that dies (or hangs
past its lease) after the SMTP server accepted the mail and before the outcome is recorded: the row is then
sent again with the same Message-ID (docs/deploy.md, SMTP)."""
from __future__ import annotations

import json
import logging
import re
from dataclasses import replace
from typing import Any

from email_validator import EmailNotValidError, validate_email

from flint import clock
from flint.actors import SYSTEM
from flint.cards import luhn_valid
from flint.config import Config, parse_mail_from
from flint.db import Conn
from flint.errors import FlintError, conflict, invalid, not_found
from flint.events import service as events
from flint.i18n import DEFAULT_LOCALE, LOCALES
from flint.ids import new_id
from flint.mail import store
from flint.mail.models import FAILED, KINDS, PENDING, RECOVERY, SENT, SUPPRESSIBLE, Email, Outcome
from flint.orders import service as orders
from flint.orders import store as order_store
from flint.runtime import Runtime

log = logging.getLogger("flint.mail")

# The unsubscribe link's token (itsdangerous, one salt per purpose): signed (merchant, address), not secret.
UNSUBSCRIBE_SALT = "mail-unsubscribe"
# A link in a mail kept for years still works for this long (a later recovery email carries a fresh one).
UNSUBSCRIBE_MAX_AGE = 2 * 366 * 86400
MAX_ADDRESS = 254  # RFC 5321's path limit, less the brackets
# 13 to 19 digits, optionally grouped by single spaces or hyphens as people write card numbers.
_DIGIT_RUN = re.compile(r"(?<!\d)\d(?:[ -]?\d){12,18}(?!\d)")


def require_configured(config: Config) -> None:
    """For a caller that must refuse without mail (the send endpoint, the console's Send)."""
    if not config.mail_configured:
        raise conflict("mail_not_configured",
                       "This Flint sends no email: FLINT_SMTP_URL and FLINT_MAIL_FROM are not both set.")


def normalise_address(to: str) -> str:
    """The address as the outbox keeps it: syntax checked (no DNS: a typo'd domain bounces later, it
    never holds up a checkout), normalised by email-validator and lower-cased, the form suppressions
    are kept in. FlintError 400 ``email_invalid`` (param "email") otherwise."""
    text = to.strip() if isinstance(to, str) else ""
    if not text or len(text) > MAX_ADDRESS:
        raise invalid("email_invalid", "The email address is not valid.", "email")
    try:
        return validate_email(text, check_deliverability=False).normalized.lower()
    except EmailNotValidError:
        raise invalid("email_invalid", "The email address is not valid.", "email") from None


def card_number_in(context: Any) -> bool:
    """Whether any text or number in ``context`` holds a digit run that could be a card number (13-19
    digits, single spaces or hyphens allowed between them, passing the Luhn check). Flint never stores
    one, so this only catches a mistake: a caller building a mail's context from card input."""
    stack = [context]
    while stack:
        value = stack.pop()
        if isinstance(value, dict):
            stack.extend(value.values())
        elif isinstance(value, (list, tuple)):
            stack.extend(value)
        elif isinstance(value, (str, int)) and not isinstance(value, bool):
            for match in _DIGIT_RUN.finditer(str(value)):
                if luhn_valid(re.sub(r"[ -]", "", match.group())):
                    return True
    return False


def _message_id(email_id: str, config: Config) -> str:
    """A Message-ID on the sending domain (RFC 5322 3.6.4), ASCII even for an internationalised one."""
    domain = parse_mail_from(config.mail_from or "")[1].rsplit("@", 1)[1]
    try:
        domain = domain.encode("idna").decode("ascii")
    except UnicodeError:
        domain = "mail.invalid"
    return f"<{email_id}@{domain}>"


async def enqueue(conn: Conn, config: Config, *, merchant_id: str, kind: str, to: str, locale: str | None,
                  cause: str, context: dict[str, Any] | str, order_id: str | None = None,
                  payment_link_id: str | None = None) -> Email | None:
    """Put a mail in the outbox, inside the CALLER's transaction (it commits, or not, with its cause).

    Returns None and writes nothing when: mail is not configured (a caller that must refuse checks
    ``require_configured`` first); a mail for ``cause`` exists already (idempotent); a recovery email's
    address unsubscribed from this merchant; or ``context`` holds a card-number-like digit run (refused
    and logged: the cause's transaction, a payment perhaps, goes on without its mail). A bad ``to`` is
    FlintError 400 ``email_invalid`` before any SQL."""
    address = normalise_address(to)
    if kind not in KINDS:
        raise ValueError(f"unknown mail kind {kind!r}")
    if not config.mail_configured:
        return None
    data = json.loads(context) if isinstance(context, str) else context
    if card_number_in(data):
        log.error("mail refused: its context holds a card-number-like digit run",
                  extra={"merchant_id": merchant_id, "kind": kind, "cause": cause})
        return None
    if kind in SUPPRESSIBLE and await store.is_suppressed(conn, merchant_id, address, kind):
        return None
    now = clock.now_iso()
    email_id = new_id("em")
    email = Email(
        id=email_id, merchant_id=merchant_id, order_id=order_id, payment_link_id=payment_link_id, kind=kind,
        to_address=address, locale=locale if locale in LOCALES else DEFAULT_LOCALE, cause=cause,
        context=json.dumps(data, separators=(",", ":"), sort_keys=True, ensure_ascii=False),
        message_id=_message_id(email_id, config), status=PENDING, attempts=0, last_error=None,
        next_attempt_at=now, lease_until=None, created_at=now, updated_at=now, sent_at=None)
    if not await store.insert_email(conn, email):
        return None
    return email


async def get_email(rt: Runtime, merchant_id: str, email_id: str) -> Email:
    async with rt.db.read() as conn:
        email = await store.select_email(conn, merchant_id, email_id)
    if email is None:
        raise not_found("email", email_id)
    return email


async def list_emails(rt: Runtime, merchant_id: str, *, order_id: str | None = None, limit: int,
                      starting_after: str | None) -> tuple[list[Email], bool]:
    async with rt.db.read() as conn:
        return await store.select_emails_page(conn, merchant_id, order_id, limit, starting_after)


# -- the worker's side ------------------------------------------------------------------------------------

async def claim(rt: Runtime, *, limit: int, lease_seconds: float) -> list[Email]:
    """Up to ``limit`` due mails, now ``sending`` under a lease of ``lease_seconds`` (one short write
    transaction); each carries the lease its outcome must be recorded under."""
    if limit <= 0:
        return []
    async with rt.db.transaction() as conn:
        return await store.claim_due(conn, now=clock.now_iso(), lease_until=clock.later_iso(lease_seconds),
                                     limit=limit)


async def record_outcomes(rt: Runtime, outcomes: list[Outcome]) -> int:
    """Write the outcomes of several attempts in one transaction, each with its event: ``email.sent``
    when the SMTP server accepted it, ``email.failed`` when it is given up (an order's mail is one of the
    order's events, in its sequence). An outcome whose lease no longer stands (another worker claimed
    the row again) changes nothing and records no event. Returns how many applied.

    Locks are taken as everywhere in Flint: the orders first (in id order, as every writer of an order's
    payments, sessions and links does), then the mails (by order, then id), so that two workers' outcome
    transactions, or one and a payment on the same order, queue behind each other on PostgreSQL instead
    of deadlocking."""
    now = clock.now_iso()
    applied = 0
    announce: dict[tuple[str, str], tuple[str, list[tuple[str, dict[str, Any]]]]] = {}
    async with rt.db.transaction() as conn:
        await order_store.select_orders_by_ids(
            conn, sorted({o.email.order_id for o in outcomes if o.email.order_id is not None and o.status != PENDING}),
            for_update=True)
        for outcome in sorted(outcomes, key=lambda o: (o.email.order_id or "", o.email.id)):
            email = outcome.email
            assert email.lease_until is not None, "an outcome of a claimed mail"
            fields: dict[str, Any] = {"status": outcome.status, "last_error": outcome.error, "lease_until": None,
                                      "updated_at": now}
            if outcome.status == PENDING:
                assert outcome.next_attempt_at is not None, "a retry says when"
                fields["next_attempt_at"] = outcome.next_attempt_at
                if outcome.unclaimed:
                    fields["attempts"] = email.attempts - 1
            else:
                fields["next_attempt_at"] = None
                if outcome.status == SENT:
                    fields["sent_at"] = now
            if await store.record_outcome(conn, email.id, email.lease_until, fields) != 1:
                continue
            applied += 1
            if outcome.status in (SENT, FAILED):
                # An order's mail is one of the order's events; another is its merchant's. Grouped, so that
                # a batch costs one event write (and one webhook fan-out) per order or merchant, not per mail.
                kind = "email.sent" if outcome.status == SENT else "email.failed"
                key = ("order", email.order_id) if email.order_id is not None else ("merchant", email.merchant_id)
                announce.setdefault(key, (email.merchant_id, []))[1].append((kind, replace(email, **fields).to_dict()))
        for (scope, scope_id), (merchant_id, items) in announce.items():
            if scope == "order":
                await orders.record_order_events(conn, merchant_id=merchant_id, actor=SYSTEM, items=items,
                                                 order_id=scope_id)
            else:
                await events.record_all(conn, merchant_id=merchant_id, actor=SYSTEM, items=items)
    return applied


# -- unsubscribe (RFC 8058) ------------------------------------------------------------------------------

def unsubscribe_token(rt: Runtime, merchant_id: str, address: str) -> str:
    """The token of a recovery email's List-Unsubscribe link: whoever holds it may stop recovery emails
    from this merchant to this address (nothing else; the payload is signed, not secret)."""
    return rt.signer.dumps(UNSUBSCRIBE_SALT, [merchant_id, address.lower()])


def unsubscribe_link(rt: Runtime, email: Email) -> str | None:
    """The URL a recovery email's List-Unsubscribe names (the buyer page and the one-click POST); None
    for the kinds no one unsubscribes from."""
    if email.kind not in SUPPRESSIBLE:
        return None
    return f"{rt.config.public_url}/unsubscribe/{unsubscribe_token(rt, email.merchant_id, email.to_address)}"


def unsubscribe_target(rt: Runtime, token: str) -> tuple[str, str]:
    """(merchant_id, address) of a genuine token, writing nothing (a GET never acts: link scanners fetch
    it). A forged, altered or expired token: FlintError 404 ``unsubscribe_invalid``."""
    refused = FlintError(404, "unsubscribe_invalid", "This unsubscribe link is not valid.")
    try:
        payload = rt.signer.loads(UNSUBSCRIBE_SALT, token or "", UNSUBSCRIBE_MAX_AGE, kind="unsubscribe")
    except FlintError:
        raise refused from None
    if (not isinstance(payload, list) or len(payload) != 2
            or not all(isinstance(part, str) and part for part in payload)):
        raise refused
    return payload[0], payload[1]


async def unsubscribe(rt: Runtime, token: str) -> tuple[str, str]:
    """No more recovery emails from the token's merchant to its address: every later one is dropped at
    enqueue, and those still waiting for an attempt are never sent. Idempotent."""
    merchant_id, address = unsubscribe_target(rt, token)
    now = clock.now_iso()
    async with rt.db.transaction() as conn:
        await store.insert_suppression(conn, merchant_id, address, RECOVERY, now)
        await store.suppress_pending(conn, merchant_id, address, RECOVERY, now)
    return merchant_id, address


async def erase_order(conn: Conn, order_id: str, at: str) -> None:
    """Inside an order's redaction: its mails forget the buyer's address and the waiting ones are not sent.
    (An unsubscribe is kept: it is the buyer's own wish not to be written to, and honouring it needs the
    address.)"""
    await store.erase_order_addresses(conn, order_id, at)
