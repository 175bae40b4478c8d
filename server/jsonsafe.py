"""JSON from outside Flint (request bodies read by hand, apps' hook answers), parsed so that hostile
input can only ever fail as ``ValueError``.

``json.loads`` raises RecursionError on deep nesting (100 000 ``[`` is enough), which is not a
ValueError, so ``except ValueError`` lets it through as a 500. Here it is a ValueError, like every
other way the text can be wrong. Strict as RFC 8259 asks of JSON exchanged between systems: UTF-8
only, no NaN or Infinity (they are not JSON, and would be written back out as invalid JSON), no
duplicate names (two parsers may keep different ones), no lone surrogates (they cannot be encoded
back to UTF-8), and a nesting limit far above any honest document.
"""
from __future__ import annotations

import json
import math
import re
from typing import Any

MAX_DEPTH = 64
_SURROGATE = re.compile("[\ud800-\udfff]")


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text[:20]} is out of range")
    return value


def _unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise ValueError("a name appears twice in one object")
    return result


def _check(value: Any, max_depth: int) -> None:
    """Depth and strings, without recursion (the value may be as deep as the parser allowed)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            if _SURROGATE.search(item):
                raise ValueError("a string holds a lone surrogate")
        elif isinstance(item, (list, dict)):
            if depth > max_depth:
                raise ValueError(f"nested more than {max_depth} levels deep")
            if isinstance(item, dict):
                stack.extend((key, depth) for key in item)
                stack.extend((child, depth + 1) for child in item.values())
            else:
                stack.extend((child, depth + 1) for child in item)


def loads(data: str | bytes, *, max_depth: int = MAX_DEPTH) -> Any:
    """The parsed value, or ValueError (never RecursionError, MemoryError or the like) with a short
    reason. Bytes must be UTF-8 (UnicodeDecodeError is a ValueError)."""
    text = data.decode("utf-8") if isinstance(data, (bytes, bytearray)) else data
    try:
        value = json.loads(text, parse_constant=_no_constant, parse_float=_finite, object_pairs_hook=_unique)
    except ValueError:
        raise
    except (RecursionError, MemoryError, OverflowError, TypeError):
        raise ValueError(f"nested more than {max_depth} levels deep or too large") from None
    _check(value, max_depth)
    return value
