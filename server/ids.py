"""Prefixed random identifiers and secrets."""
from __future__ import annotations

import secrets

_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def _base62(n_bytes: int) -> str:
    number = int.from_bytes(secrets.token_bytes(n_bytes), "big")
    width = 1
    while 62 ** width < 256 ** n_bytes:
        width += 1
    out = []
    for _ in range(width):
        number, rem = divmod(number, 62)
        out.append(_ALPHABET[rem])
    return "".join(out)


def new_id(prefix: str) -> str:
    """``prefix_`` + 128 random bits (API.md asks for at least 96)."""
    return f"{prefix}_{_base62(16)}"


def new_secret(prefix: str) -> str:
    """Secrets get 192 random bits: they are bearer credentials."""
    return f"{prefix}{_base62(24)}"
