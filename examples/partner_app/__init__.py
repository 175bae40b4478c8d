"""Risk Check, a small partner app for Flint: installs with OAuth 2.0 and PKCE, keeps its tokens,
verifies its webhooks, adds an "I am 18 or older" checkbox to its merchants' checkouts and answers the
``checkout.before_payment`` hook. ``flint demo`` registers and runs it; ``python -m
examples.partner_app`` runs it on its own and ``python -m examples.partner_app.register`` registers it
(see README.md here)."""
from .app import CHECKOUT_FIELDS, create_partner_app, registration

__all__ = ["CHECKOUT_FIELDS", "create_partner_app", "registration"]
