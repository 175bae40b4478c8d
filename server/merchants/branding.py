"""A merchant's brand colour where it meets markup: checked again at the last step before a style (it was
validated when set: merchants.service), and the text colour that reads on it (WCAG contrast ratio)."""
from __future__ import annotations

import re
from typing import Any

DEFAULT_BRAND_COLOR = "#4f46e5"  # Flint's own, as merchants.models defaults it
DARK_TEXT = "#111827"
_HEX = re.compile(r"#[0-9a-fA-F]{6}")


def checked_color(value: Any) -> str:
    """``value`` as a lower-case #rrggbb, or Flint's default for anything else (a style never gets more)."""
    return value.lower() if isinstance(value, str) and _HEX.fullmatch(value) else DEFAULT_BRAND_COLOR


def luminance(color: str) -> float:
    """WCAG 2 relative luminance of a #rrggbb."""
    def channel(hex_pair: str) -> float:
        c = int(hex_pair, 16) / 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4
    r, g, b = (channel(color[i:i + 2]) for i in (1, 3, 5))
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def text_on(color: str) -> str:
    """White or near-black, whichever has the higher contrast on ``color``: a pale brand still gets a
    button its buyers can read."""
    light = luminance(color)
    return "#ffffff" if 1.05 / (light + 0.05) >= (light + 0.05) / (luminance(DARK_TEXT) + 0.05) else DARK_TEXT
