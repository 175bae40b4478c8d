"""Small helpers every blueprint uses."""
from __future__ import annotations

from quart import current_app

from flint.runtime import Runtime


def runtime() -> Runtime:
    return current_app.extensions["flint"]
