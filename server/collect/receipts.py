"""The receipt (docs/api.md 16): when an order is paid, a merchant with ``receipts`` on has the buyer
emailed one, written to the mail outbox in the very transaction that marks the order paid (so a receipt
exists exactly when the payment does, and once: cause ``receipt:<order id>``).

The paid path is kept fast (it is every payment's): with mail not configured, or no usable buyer
address on the order already loaded, nothing is read or written; otherwise one read of the merchant
(its setting, name and colour) and one INSERT."""
from __future__ import annotations

from flint import clock
from flint.config import Config
from flint.db import Conn
from flint.links.emails import buyer_email, context, mail_locale
from flint.mail import service as mail
from flint.mail.models import RECEIPT, Email
from flint.merchants import store as merchant_store
from flint.orders.models import Order
from flint.payments.models import Payment


async def enqueue_receipt(conn: Conn, config: Config, order: Order, payment: Payment, *,
                          locale: str | None, paid_at: str) -> Email | None:
    """``order`` as it is now paid, ``payment`` the one that paid it; ``locale`` the paying buyer's
    language (English when the payment came from no buyer's request)."""
    if not config.mail_configured:
        return None
    to = buyer_email(order)
    if to is None:
        return None
    merchant = await merchant_store.select_merchant(conn, order.merchant_id)
    if merchant is None or not merchant.receipts:
        return None
    receipt_of = {"brand": payment.card_brand, "last4": payment.card_last4, "amount": payment.amount,
                  "paid_at": clock.public(paid_at)}
    return await mail.enqueue(conn, config, merchant_id=order.merchant_id, kind=RECEIPT, to=to,
                              locale=mail_locale(locale), cause=f"receipt:{order.id}", order_id=order.id,
                              context=context(merchant, order, payment=receipt_of))
