"""Prefixed random identifiers and secrets, in base62 so they survive URLs, logs and copy-paste."""
from __future__ import annotations

import secrets

_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def _base62(length: int) -> str:
    """``length`` uniform base62 characters (about 5.95 bits each).

    Rejection sampling keeps every character uniform: bytes of 248 or more (248 = 4 x 62) are
    dropped instead of folded in with a modulo bias.
    """
    out: list[str] = []
    while len(out) < length:
        out.extend(_ALPHABET[b % 62] for b in secrets.token_bytes(length + 8) if b < 248)
    return "".join(out[:length])


def new_id(prefix: str) -> str:
    """``prefix_`` + 22 base62 characters = 130 random bits (the API reference (docs/api.md) asks for at least 96)."""
    return f"{prefix}_{_base62(22)}"


def new_secret(prefix: str) -> str:
    """Secrets carry 196 random bits (33 characters): they are bearer credentials."""
    return f"{prefix}{_base62(33)}"
