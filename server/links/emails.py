"""Email to buyers (docs/api.md 16), the parts that hang on orders and links: who the buyer is, what a mail
shows (its context, frozen when the mail is caused), the recovery email of a drop-off's link, and a payment
link sent on request. The receipt is flint.collect.receipts; the outbox, its worker and the mails themselves
are flint.mail.

Every mail is one row written through ``mail.enqueue`` in the transaction of its cause; with mail not
configured nothing is read or written."""
from __future__ import annotations

import json
import uuid
from typing import Any

from flint import clock
from flint.actors import Actor
from flint.audit import service as audit
from flint.checkout.models import CheckoutSession
from flint.config import Config
from flint.db import Conn
from flint.errors import FlintError, not_found
from flint.i18n import DEFAULT_LOCALE, LOCALES
from flint.links import service, store
from flint.links.models import PaymentLink
from flint.mail import service as mail
from flint.mail.models import PAYMENT_LINK, RECOVERY, Email
from flint.merchants import store as merchant_store
from flint.merchants.models import Merchant
from flint.orders import store as order_store
from flint.orders.models import Order
from flint.runtime import Runtime


def deliverable(address: str | None) -> str | None:
    """The address as the outbox keeps it, or None when it is no address mail can go to (syntax only, no
    DNS): an order's customer_email was never checked, and a bad one must not fail the payment it rides on."""
    if not address:
        return None
    try:
        return mail.normalise_address(address)
    except FlintError:
        return None


def buyer_email(order: Order) -> str | None:
    """The buyer's address: the one they typed at checkout (docs/api.md 14) before the one the merchant
    gave with the order. None when neither is a usable address (or the order was redacted)."""
    typed = None
    if order.customer:
        typed = (json.loads(order.customer) or {}).get("email")
    return deliverable(typed) or deliverable(order.customer_email)


def mail_locale(locale: str | None) -> str:
    return locale if locale in LOCALES else DEFAULT_LOCALE


def context(merchant: Merchant, order: Order, *, link_url: str | None = None,
            payment: dict[str, Any] | None = None, expires_at: str | None = None) -> dict[str, Any]:
    """What a mail shows, as flint.mail.compose reads it (notes of issue 17): nothing the buyer did not see
    on the checkout (a receipt's card is its brand and last four digits, never more). Line amounts are
    line totals; times are RFC 3339."""
    return {
        "merchant": {"name": merchant.name, "brand_color": merchant.brand_color},
        "order": {
            "id": order.id, "reference": order.reference, "currency": order.currency,
            "amount_total": order.amount_total, "amount_paid": order.amount_paid,
            "lines": [{"name": line["name"], "quantity": line["quantity"],
                       "amount": line.get("amount_total", line["quantity"] * line["unit_amount"])}
                      for line in json.loads(order.line_items)],
        },
        "link_url": link_url,
        "payment": payment,
        "expires_at": clock.public(expires_at),
    }


async def enqueue_recovery(conn: Conn, config: Config, session: CheckoutSession, order: Order,
                           link: PaymentLink) -> Email | None:
    """Inside the transaction that made the drop-off's recovery link: its email, when the session asked for
    one (``recovery.email``) and the buyer's address is known; in the language the buyer's page last
    spoke (else English). An address that unsubscribed from this merchant's recovery emails gets none
    (mail.enqueue checks). Once per link: cause ``recovery:<link id>``."""
    if not config.mail_configured or not session.recovery_email:
        return None
    to = buyer_email(order)
    if to is None:
        return None
    merchant = await merchant_store.select_merchant(conn, order.merchant_id)
    assert merchant is not None
    return await mail.enqueue(
        conn, config, merchant_id=order.merchant_id, kind=RECOVERY, to=to, locale=mail_locale(session.locale),
        cause=f"recovery:{link.id}", order_id=order.id, payment_link_id=link.id,
        context=context(merchant, order, link_url=link.url(config.public_url), expires_at=link.expires_at))


async def send_link(rt: Runtime, merchant_id: str, link_id: str, *, to: str, actor: Actor,
                    locale: str | None = None) -> Email:
    """``POST /v1/payment_links/{id}/send``, and the console's ``Send payment link``: the link by email to
    ``to``, now (the worker sends it within moments). Refused, in this order: 409 mail_not_configured,
    400 email_invalid, 404 for a link that is not this merchant's, 409 when the link cannot be paid
    (inactive, expired, its order paid or canceled: what its page would say). Each call is a new mail
    (cause ``send:<random id>``); a retried request with its Idempotency-Key replays the first answer
    instead of sending again. ``actor`` (who asked: the merchant's key, an app, a staff member) is
    recorded in the audit trail as ``payment_link.sent`` with the email's id, in the same transaction."""
    mail.require_configured(rt.config)
    address = mail.normalise_address(to)  # 400 email_invalid (param "email")
    async with rt.db.transaction() as conn:
        link = await store.select_link(conn, merchant_id, link_id)
        if link is None:
            raise not_found("payment_link", link_id)
        # Locks the order (as every writer of what hangs on it does): a payment settling meanwhile is
        # seen here, and a paid order's link is not sent.
        order = await order_store.select_order_by_id(conn, link.order_id, for_update=True)
        merchant = await merchant_store.select_merchant(conn, merchant_id)
        assert order is not None and merchant is not None
        service.check_link_payable(link, order.status)
        email = await mail.enqueue(
            conn, rt.config, merchant_id=merchant_id, kind=PAYMENT_LINK, to=address, locale=mail_locale(locale),
            cause=f"send:{uuid.uuid4().hex}", order_id=order.id, payment_link_id=link.id,
            context=context(merchant, order, link_url=link.url(rt.config.public_url), expires_at=link.expires_at))
        assert email is not None  # configured, a fresh cause, and no suppression for this kind
        await audit.record(conn, merchant_id=merchant_id, actor=actor, action="payment_link.sent",
                           object_id=link.id, changes={"email_id": email.id})
    return email
