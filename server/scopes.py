"""What an app may be granted, and what each grant lets it read (docs/api.md 10 and 12).

One Quart-free home for the scope names, the rule that decides which events an installation may
read, and the words a merchant reads on the consent page (and, later, in the console). Nothing here
imports a domain: events are named by their type strings.
"""
from __future__ import annotations

from flint.i18n import N_

SCOPES = (
    "orders:read", "orders:write", "checkout:write", "payment_links:write", "payments:read",
    "refunds:write", "events:read", "webhooks:write", "payments:write",
)
# Merchant-account operations no app may perform, whatever it was granted.
MERCHANT_ONLY = "merchant"

# What each scope lets an app do, in the merchant's words (the consent page lists every one).
SCOPE_WORDS = {
    "orders:read": N_("See your orders, checkout sessions and payment links"),
    "orders:write": N_("Create, cancel and redact orders"),
    "checkout:write": N_("Create and expire checkout sessions"),
    "payment_links:write": N_("Create and deactivate payment links"),
    "payments:read": N_("See payments (card brand and last four digits only, never card numbers)"),
    "refunds:write": N_("Refund payments"),
    "payments:write": N_("Capture and void authorized payments"),
    "events:read": N_("Read your store's event history"),
    "webhooks:write": N_("Manage its own webhook endpoints for your store"),
}

# Which scope makes an event type readable (docs/api.md 12), by prefix. An event whose type no prefix
# names (app.*, webhook_endpoint.*) is readable by no app, except app.* about the app itself.
READ_SCOPE_BY_PREFIX = (
    ("order.", "orders:read"),
    ("checkout.session.", "orders:read"),
    ("payment_link.", "orders:read"),
    ("payment.", "payments:read"),
    ("refund.", "payments:read"),
    # Mails to buyers are about orders (and carry the buyer's address, as the order does).
    ("email.", "orders:read"),
)
APP_LIFECYCLE_PREFIX = "app."


def read_scope(event_type: str) -> str | None:
    for prefix, scope in READ_SCOPE_BY_PREFIX:
        if event_type.startswith(prefix):
            return scope
    return None


def readable(event_type: str, scopes: frozenset[str] | set[str] | list[str]) -> bool:
    """Whether an installation holding ``scopes`` may read events of this type (app.* aside: those
    go to the app they are about, which the caller checks)."""
    needed = read_scope(event_type)
    return needed is not None and needed in scopes


# What each event tells an app, in the merchant's words, grouped by what it reveals (the consent page
# and the console show these, never raw type names). Groups are keyed by the scope that reads them.
EVENT_GROUPS = (
    ("orders:read", N_("About your orders, checkouts and payment links")),
    ("payments:read", N_("About payments and refunds (amounts, card brand and last four digits)")),
    (None, N_("About this app itself")),
)
EVENT_WORDS = {
    "order.created": N_("When an order is created"),
    "order.paid": N_("When an order is paid"),
    "order.canceled": N_("When an order is canceled"),
    "order.refunded": N_("When an order is refunded"),
    "order.redacted": N_("When a buyer's personal data is erased from an order"),
    "checkout.session.created": N_("When a checkout starts"),
    "checkout.session.completed": N_("When a checkout is completed"),
    "checkout.session.expired": N_("When a checkout expires unpaid"),
    "checkout.session.abandoned": N_("When a buyer leaves a checkout unpaid"),
    "checkout.session.fallback_used": N_("When a buyer is sent to the hosted checkout page"),
    "payment.requires_action": N_("When a payment waits for the buyer's bank (3-D Secure)"),
    "payment.succeeded": N_("When a payment succeeds"),
    "payment.authorized": N_("When a payment is authorized, to be captured later"),
    "payment.captured": N_("When an authorized payment is captured"),
    "payment.voided": N_("When an authorized payment is voided or expires"),
    "payment.failed": N_("When a payment fails or is declined"),
    "payment_link.created": N_("When a payment link is created"),
    "payment_link.deactivated": N_("When a payment link is deactivated"),
    "email.sent": N_("When an email to a buyer is sent"),
    "email.failed": N_("When an email to a buyer cannot be delivered"),
    "refund.succeeded": N_("When a refund goes through"),
    "refund.failed": N_("When a refund fails"),
    "app.installed": N_("When this app is installed"),
    "app.uninstalled": N_("When this app is uninstalled"),
    "webhook_endpoint.disabled": N_("When a webhook endpoint is disabled"),
}


def grouped_events(event_types: list[str]) -> list[tuple[str, list[str]]]:
    """(group words, [event words]) for the event types an app will receive, in EVENT_GROUPS order,
    empty groups left out."""
    out = []
    for scope, title in EVENT_GROUPS:
        words = [EVENT_WORDS.get(t, t) for t in event_types
                 if (read_scope(t) == scope if scope else t.startswith(APP_LIFECYCLE_PREFIX))]
        if words:
            out.append((title, words))
    return out
