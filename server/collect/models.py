from __future__ import annotations

from dataclasses import dataclass

from flint.checkout.models import CheckoutSession
from flint.links.models import PaymentLink


@dataclass(frozen=True)
class Attempt:
    """Where a buyer is paying from: a checkout session (embedded in the widget, or on its hosted page)
    or a payment link, and the buyer's address for the per-address attempt limit."""
    merchant_id: str
    order_id: str
    channel: str  # embedded | hosted | payment_link
    checkout_session_id: str | None = None
    payment_link_id: str | None = None
    # As the route saw it (X-Forwarded-For only from trusted proxies); None for callers that are no
    # buyer's request (the CLI, tests).
    client_address: str | None = None
    # The buyer's language as the paying request negotiated it (en | de | fr): the receipt's language
    # (docs/api.md 16). None for callers that are no buyer's request: the receipt is then in English.
    locale: str | None = None

    @classmethod
    def for_session(cls, session: CheckoutSession, *, channel: str, client_address: str | None = None,
                    locale: str | None = None) -> "Attempt":
        """``channel``: "embedded" from the widget's frame, "hosted" from the session's hosted page."""
        return cls(session.merchant_id, session.order_id, channel, checkout_session_id=session.id,
                   client_address=client_address, locale=locale)

    @classmethod
    def for_link(cls, link: PaymentLink, *, client_address: str | None = None,
                 locale: str | None = None) -> "Attempt":
        return cls(link.merchant_id, link.order_id, "payment_link", payment_link_id=link.id,
                   client_address=client_address, locale=locale)
