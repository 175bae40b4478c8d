"""A small demo merchant shop: a storefront and merchant backend on its own origin that talks to
Flint only through Flint's public HTTP API with its secret key. ``flint demo`` starts it next to
Flint; ``python -m examples.shop`` runs it on its own (see README.md here)."""
from .app import create_shop
from .server import serve_shop, wait_listening

__all__ = ["create_shop", "serve_shop", "wait_listening"]
