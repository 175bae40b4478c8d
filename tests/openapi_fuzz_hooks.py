"""Schemathesis hooks for ``tests/test_openapi_fuzz.py``, loaded through ``SCHEMATHESIS_HOOKS``
into the schemathesis process (never imported by pytest itself).

Schemathesis draws ``Idempotency-Key`` values from a small space ("0", "A", boundary strings),
so left alone most POSTs of a run carry a key that an earlier, *different* request of the same
merchant already used, and Flint rightly answers 422 ``idempotency_key_reused`` before it even
reads the body: the fuzzer would mostly test the idempotency layer and hardly the endpoints.
So a drawn key that Flint accepts gets a unique suffix (it stays valid, and the request still
goes through the idempotency layer); an invalid key, or any negative test aimed at a header
(e.g. "Authorization left out", which schemathesis would re-read as positive once the headers
change), is sent exactly as drawn. Replays and key reuse have their own tests
(tests/idempotency/test_idempotency.py).
"""
from __future__ import annotations

import re
import uuid

import schemathesis
from schemathesis.core.parameters import ParameterLocation

from flint.http.openapi import IDEMPOTENCY_PARAMETER

_VALID_KEY = re.compile(IDEMPOTENCY_PARAMETER["schema"]["pattern"])


@schemathesis.hook
def before_call(context, case, kwargs) -> None:
    headers = case.headers
    if not headers:
        return
    meta = case.meta
    if meta is not None and meta.generation.mode.is_negative and \
            getattr(meta.phase.data, "parameter_location", None) == ParameterLocation.HEADER:
        return
    for name in list(headers):
        value = headers[name]
        if name.lower() == "idempotency-key" and isinstance(value, str) and _VALID_KEY.fullmatch(value):
            headers[name] = f"{value[:200]}~{uuid.uuid4().hex}"
