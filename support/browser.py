"""Debian's Chromium as the browser tests and the widget benchmark drive it (Playwright's own browser
download does not work here: Debian's package is the browser)."""
from __future__ import annotations

import os

CHROMIUM = os.environ.get("FLINT_E2E_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
# Every context: a desktop viewport, US English and UTC, so pages, screenshots and timings repeat.
CONTEXT_OPTIONS = {"viewport": {"width": 1280, "height": 900}, "locale": "en-US", "timezone_id": "UTC"}
