"""Prefixed random identifiers and secrets, in base62 so they survive URLs, logs and copy-paste."""
from __future__ import annotations

import secrets

_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


# Each byte below 248 maps to ALPHABET[byte % 62]; bytes of 248 or more are deleted (see _base62).
_TO_BASE62 = bytes(ord(_ALPHABET[b % 62]) if b < 248 else 0 for b in range(256))
_REJECTED = bytes(range(248, 256))


def _base62(length: int) -> str:
    """``length`` uniform base62 characters (about 5.95 bits each).

    Rejection sampling keeps every character uniform: bytes of 248 or more (248 = 4 x 62) are
    dropped instead of folded in with a modulo bias. (One ``bytes.translate`` does both in C: ids are
    made several times per request, issue 19.)
    """
    out = b""
    while len(out) < length:
        out += secrets.token_bytes(length + 8).translate(_TO_BASE62, _REJECTED)
    return out[:length].decode("ascii")


def new_id(prefix: str) -> str:
    """``prefix_`` + 22 base62 characters = 130 random bits (the API reference (docs/api.md) asks for at least 96)."""
    return f"{prefix}_{_base62(22)}"


def new_secret(prefix: str) -> str:
    """Secrets carry 196 random bits (33 characters): they are bearer credentials."""
    return f"{prefix}{_base62(33)}"
