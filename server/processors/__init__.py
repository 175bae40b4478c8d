"""Processors as connectors behind one interface (docs/processors.md).

``flint.processors.base`` is the interface and Flint's statuses, ``flint.processors.simulated`` the
default connector, ``flint.processors.stripe`` the Stripe connector (imported only when chosen: the
``stripe`` package is an optional dependency, ``flint-checkout[stripe]``). Every name the rest of
Flint imports stays importable from here.
"""
from __future__ import annotations

from flint.processors.base import (
    ALREADY_CAPTURED,
    AUTHORIZATION_EXPIRED,
    AUTHORIZED,
    AUTOMATIC,
    CANCELED,
    CAPTURE_METHODS,
    FAILED,
    FAILURE_MESSAGES,
    INVALID_AMOUNT,
    MANUAL,
    N_,
    NOT_FOUND,
    REQUIRES_ACTION,
    SUCCEEDED,
    UNKNOWN,
    ChargeRequest,
    ChargeResult,
    Processor,
    ProcessorUnavailable,
    RefundResult,
)
from flint.processors.simulated import (
    AUTHORIZATION_EXPIRES,
    DECLINES,
    REFUND_FAILS,
    THREE_D_SECURE,
    SimulatedProcessor,
)

PROCESSORS = ("simulated", "stripe")


def build_processor(name: str, *, stripe_secret_key: str | None = None, stripe_api_base: str | None = None,
                    timeout_seconds: float = 30.0) -> Processor:
    """The connector named by FLINT_PROCESSOR, from settings the runtime passes (flint.processors sits
    beside flint.config, not above it)."""
    if name == "simulated":
        return SimulatedProcessor()
    if name == "stripe":
        from flint.processors.stripe import StripeProcessor  # the optional `stripe` package, only when chosen

        if not stripe_secret_key:
            raise ValueError("FLINT_PROCESSOR=stripe needs FLINT_STRIPE_SECRET_KEY")
        return StripeProcessor(stripe_secret_key, api_base=stripe_api_base, timeout_seconds=timeout_seconds)
    raise ValueError(f"FLINT_PROCESSOR must be one of {', '.join(PROCESSORS)}, not {name!r}")


__all__ = [
    "ALREADY_CAPTURED", "AUTHORIZATION_EXPIRED", "AUTHORIZATION_EXPIRES", "AUTHORIZED", "AUTOMATIC", "CANCELED",
    "CAPTURE_METHODS", "DECLINES", "FAILED", "FAILURE_MESSAGES", "INVALID_AMOUNT", "MANUAL", "N_", "NOT_FOUND",
    "PROCESSORS", "REFUND_FAILS", "REQUIRES_ACTION", "SUCCEEDED", "THREE_D_SECURE", "UNKNOWN", "ChargeRequest",
    "ChargeResult", "Processor", "ProcessorUnavailable", "RefundResult", "SimulatedProcessor", "build_processor",
]
