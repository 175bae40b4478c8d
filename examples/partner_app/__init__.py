"""Risk Check, a small partner app for Flint: installs with OAuth 2.0 and PKCE, keeps its tokens,
verifies its webhooks and answers the ``checkout.before_payment`` hook. ``flint demo`` registers and
runs it; ``python -m examples.partner_app`` runs it on its own (see README.md here)."""
from .app import create_partner_app

__all__ = ["create_partner_app"]
