"""Flint's QA kit (docs/testing.md): what a merchant's QA engineer needs to test their own checkout in a real
browser, offline: the pytest plugin (flint.testing.plugin: the ``flint_server`` and ``flint_webhooks``
fixtures, loaded through the ``pytest11`` entry point) and the Playwright helpers ``FlintCheckout`` and
``AsyncFlintCheckout`` (flint.testing.checkout).

The top of Flint's layers: it launches Flint as a process and nothing in Flint imports it. The helpers are
imported on first use, so loading the plugin never imports Playwright (the merchant's test dependency).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from flint.testing.checkout import AsyncFlintCheckout, FlintCheckout, WidgetUnavailable

__all__ = ["AsyncFlintCheckout", "FlintCheckout", "WidgetUnavailable"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from flint.testing import checkout

        return getattr(checkout, name)
    raise AttributeError(f"module 'flint.testing' has no attribute {name!r}")
