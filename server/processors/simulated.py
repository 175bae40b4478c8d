"""The built-in simulated processor: Flint's default connector, for development, tests and demos.

It is a real, stateless implementation of the connector interface: it decides by card number like
Stripe's test cards (docs/api.md 6) and carries what it must remember in its own opaque reference, as a
real processor keeps it on its side, so that any Flint process (or two racing ones) gets the same answer
for the same reference. The references:

- ``sim_ch_<hex>[_<captured>]``: captured (``sim_chnr_``: its refunds fail);
- ``sim_auth_<hex>[_<authorized>_<expires>]``: authorized, ``<expires>`` the Unix second at which the
  processor lets it lapse (``sim_authnr_``: its capture's refunds fail); references without the tail
  (issued before it existed) are authorized for any amount and never lapse;
- ``sim_3ds_<hex>[_<amount>]``: waiting for the buyer's 3-D Secure answer;
- ``sim_void_<...>``: a released authorization; ``sim_dc_<code>_<hex>``: a decline.

Time is Flint's clock (flint.clock), so the test clock ages authorizations too.
"""
from __future__ import annotations

import secrets

from flint import clock
from flint.processors.base import (
    ALREADY_CAPTURED,
    AUTHORIZATION_EXPIRED,
    AUTHORIZED,
    AUTOMATIC,
    CANCELED,
    FAILED,
    INVALID_AMOUNT,
    MANUAL,
    NOT_FOUND,
    REQUIRES_ACTION,
    SUCCEEDED,
    UNKNOWN,
    ChargeRequest,
    ChargeResult,
    RefundResult,
)

# docs/api.md 6: the test-card table.
DECLINES = {
    "4000000000000002": "card_declined",
    "4000000000009995": "insufficient_funds",
    "4000000000000069": "expired_card",
    "4000000000000127": "incorrect_cvc",
    "4000000000000119": "processing_error",
}
THREE_D_SECURE = "4000002760003184"
REFUND_FAILS = "4000000000005126"
# Issue 18: authorizes (manual capture), and the processor lets the authorization lapse at once: its
# capture fails with authorization_expired and a look-up says canceled. (Automatic capture: paid.)
AUTHORIZATION_EXPIRES = "4000000000000440"

# How long the processor keeps an uncaptured authorization (Stripe: 7 days for most card payments).
DEFAULT_AUTHORIZATION_TTL = 7 * 24 * 3600


def _epoch() -> int:
    return int(clock.now().timestamp())


class SimulatedProcessor:
    name = "simulated"
    # A class default too: subclasses in tests that skip __init__ still age their authorizations.
    authorization_ttl_seconds: float = DEFAULT_AUTHORIZATION_TTL

    def __init__(self, authorization_ttl_seconds: float = DEFAULT_AUTHORIZATION_TTL) -> None:
        self.authorization_ttl_seconds = authorization_ttl_seconds

    @staticmethod
    def _ref(kind: str) -> str:
        return f"sim_{kind}_{secrets.token_hex(12)}"

    def _authorization(self, kind: str, token: str, amount: int | None, expires_now: bool = False) -> ChargeResult:
        expires = _epoch() if expires_now else _epoch() + int(self.authorization_ttl_seconds)
        tail = f"_{amount}_{expires}" if amount is not None else ""
        return ChargeResult(AUTHORIZED, f"sim_{kind}_{token}{tail}", None, amount)

    async def charge(self, request: ChargeRequest) -> ChargeResult:
        number = request.card.number
        if number in DECLINES:
            code = DECLINES[number]
            return ChargeResult(FAILED, f"sim_dc_{code}_{secrets.token_hex(12)}", code)
        if number == THREE_D_SECURE:
            return ChargeResult(REQUIRES_ACTION, f"{self._ref('3ds')}_{request.amount}")
        if request.capture == MANUAL:
            # The authorization's ref says what its capture will become (authnr: its refunds fail).
            return self._authorization("authnr" if number == REFUND_FAILS else "auth", secrets.token_hex(12),
                                       request.amount, expires_now=number == AUTHORIZATION_EXPIRES)
        if number == REFUND_FAILS:
            return ChargeResult(SUCCEEDED, self._ref("chnr"), None, request.amount)
        return ChargeResult(SUCCEEDED, self._ref("ch"), None, request.amount)

    async def complete_action(self, processor_ref: str, approved: bool, capture: str = AUTOMATIC) -> ChargeResult:
        if not processor_ref.startswith("sim_3ds_"):
            return ChargeResult(FAILED, processor_ref, "processing_error")
        if not approved:
            return ChargeResult(FAILED, processor_ref, "authentication_failed")
        token, _, amount_text = processor_ref[len("sim_3ds_"):].partition("_")
        amount = int(amount_text) if amount_text.isdigit() else None
        if capture == MANUAL:
            return self._authorization("auth", token, amount)
        return ChargeResult(SUCCEEDED, f"sim_ch_{token}", None, amount)

    @staticmethod
    def _parse_authorization(ref: str) -> tuple[str, str, int | None, int | None] | None:
        """(kind, token, authorized amount, expires) of a sim_auth_/sim_authnr_ ref, else None."""
        for kind in ("authnr", "auth"):
            prefix = f"sim_{kind}_"
            if ref.startswith(prefix):
                token, *tail = ref[len(prefix):].split("_")
                if len(tail) == 2 and tail[0].isdigit() and tail[1].isdigit():
                    return kind, token, int(tail[0]), int(tail[1])
                return kind, token, None, None
        return None

    @staticmethod
    def _lapsed(expires: int | None) -> bool:
        return expires is not None and _epoch() >= expires

    async def capture(self, payment_id: str, processor_ref: str | None, amount: int, currency: str) -> ChargeResult:
        # Stateless like the rest: the capture's ref is derived from the authorization's, so capturing
        # again (a retry under the same payment id) answers the same.
        ref = processor_ref or ""
        if ref.startswith(("sim_ch_", "sim_chnr_")):
            # Already captured (a retry whose first answer was lost): the same answer again.
            return ChargeResult(SUCCEEDED, ref, None, _captured_amount(ref))
        auth = self._parse_authorization(ref)
        if auth is None:
            if ref.startswith("sim_void_"):
                return ChargeResult(FAILED, ref, AUTHORIZATION_EXPIRED)
            return ChargeResult(FAILED, processor_ref, "processing_error")
        kind, token, authorized, expires = auth
        if self._lapsed(expires):
            return ChargeResult(FAILED, ref, AUTHORIZATION_EXPIRED)
        if amount <= 0 or (authorized is not None and amount > authorized):
            return ChargeResult(FAILED, ref, INVALID_AMOUNT)
        captured = "chnr" if kind == "authnr" else "ch"
        # The rest of a partial capture is released: the captured ref no longer holds it.
        return ChargeResult(SUCCEEDED, f"sim_{captured}_{token}_{amount}", None, amount)

    async def refund(self, processor_ref: str, amount: int, currency: str, refund_id: str) -> RefundResult:
        if processor_ref.startswith("sim_chnr_"):
            return RefundResult(FAILED, None, "refund_failed")
        return RefundResult(SUCCEEDED, self._ref("re"))

    async def void(self, payment_id: str, processor_ref: str | None) -> ChargeResult:
        ref = processor_ref or ""
        if ref.startswith(("sim_ch_", "sim_chnr_")):
            # Voiding a captured charge fails at a real processor; only a refund gives the money back.
            return ChargeResult(FAILED, ref, ALREADY_CAPTURED)
        if ref.startswith("sim_void_"):
            return ChargeResult(CANCELED, ref)
        if not ref or ref.startswith("sim_dc_"):
            # Nothing is held under this payment id (the charge never reached the processor, or was declined).
            return ChargeResult(CANCELED, processor_ref)
        # An authorization (lapsed or not) or a pending 3-D Secure check: released.
        return ChargeResult(CANCELED, "sim_void_" + ref[len("sim_"):])

    async def lookup(self, payment_id: str, processor_ref: str | None) -> ChargeResult:
        ref = processor_ref or ""
        if not ref:
            # The simulated processor always answers, so a payment without a ref never reached it.
            return ChargeResult(FAILED, None, NOT_FOUND)
        if ref.startswith(("sim_ch_", "sim_chnr_")):
            return ChargeResult(SUCCEEDED, ref, None, _captured_amount(ref))
        if ref.startswith("sim_dc_"):
            code = ref[len("sim_dc_"):].rsplit("_", 1)[0]
            return ChargeResult(FAILED, ref, code or "card_declined")
        if ref.startswith("sim_3ds_"):
            return ChargeResult(REQUIRES_ACTION, ref)
        if ref.startswith("sim_void_"):
            return ChargeResult(CANCELED, ref)
        auth = self._parse_authorization(ref)
        if auth is not None:
            _, _, authorized, expires = auth
            if self._lapsed(expires):
                return ChargeResult(CANCELED, ref, AUTHORIZATION_EXPIRED)
            return ChargeResult(AUTHORIZED, ref, None, authorized)
        return ChargeResult(UNKNOWN, ref)


def _captured_amount(ref: str) -> int | None:
    tail = ref.rsplit("_", 1)[-1]
    parts = ref.split("_")
    # sim_ch_<hex>_<amount>: four parts; sim_ch_<hex> (no amount said): three.
    return int(tail) if len(parts) == 4 and tail.isdigit() else None
