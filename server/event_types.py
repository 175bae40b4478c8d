"""Every event type Flint records (docs/api.md 9, 12): one list that the events, the webhook filters, the
consent page and the scopes' reading rule share, below all of them."""
from __future__ import annotations

EVENT_TYPES = (
    "order.created",
    "order.paid",
    "order.canceled",
    "order.refunded",
    # The buyer's personal data was erased from the order and its events (docs/api.md 14).
    "order.redacted",
    "checkout.session.created",
    "checkout.session.completed",
    "checkout.session.expired",
    "checkout.session.abandoned",
    "checkout.session.fallback_used",
    "payment.requires_action",
    "payment.succeeded",
    # Authorize now, capture later (docs/api.md 17): held, taken, or released (voided or expired).
    "payment.authorized",
    "payment.captured",
    "payment.voided",
    "payment.failed",
    "payment_link.created",
    "payment_link.deactivated",
    # Email to buyers (docs/api.md 16): the SMTP server accepted a mail, or it was given up.
    "email.sent",
    "email.failed",
    "refund.succeeded",
    "refund.failed",
    "app.installed",
    "app.uninstalled",
    # Flint's own addition: an endpoint that failed for too long (or answered 410) was disabled.
    "webhook_endpoint.disabled",
)
