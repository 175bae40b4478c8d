"""Console pages (docs/api.md 16): being built."""
from __future__ import annotations

from quart import Blueprint

bp = Blueprint("console_team", __name__)
