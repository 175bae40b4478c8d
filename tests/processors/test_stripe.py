"""The Stripe connector (flint.processors.stripe, the official `stripe` package) against localstripe, a
local Stripe started by the suite as a separate process (tests/processors/conftest.py), and against
servers that hang or drop the connection. localstripe models less than Stripe (docs/processors.md):
Flint's test cards are mapped here to the cards localstripe itself knows."""
import time

import pytest

from flint.cards import Card
from flint.processors import (
    ALREADY_CAPTURED,
    AUTHORIZATION_EXPIRED,
    AUTHORIZED,
    CANCELED,
    FAILED,
    MANUAL,
    NOT_FOUND,
    REQUIRES_ACTION,
    SUCCEEDED,
    THREE_D_SECURE,
    UNKNOWN,
    ChargeRequest,
    ProcessorUnavailable,
)
from flint.processors.stripe import StripeProcessor, map_payment_intent
from tests.processors.conftest import SECRET_KEY, SilentServer

# The stripe package's HTTPX client posts its form body as raw bytes, which httpx 0.28 flags as deprecated.
pytestmark = pytest.mark.filterwarnings("ignore:Use 'content=<...>':DeprecationWarning")

# Flint's test-card table (docs/api.md 6) -> the card localstripe answers the same way for.
CARDS = {
    "success": "4242424242424242",
    # localstripe declines a charge only for 4000000000000341 (…0002 it declines only on attaching).
    "declined": "4000000000000341",
    "three_d_secure": THREE_D_SECURE,  # localstripe: requires_action / use_stripe_sdk
}


def charge_request(payment_id, kind="success", amount=5000, capture="automatic"):
    return ChargeRequest(payment_id, amount, "EUR", Card(CARDS[kind], 12, 2034, "123"), capture)


def new_id(name):
    return f"pay_{name}_{time.monotonic_ns()}"


async def test_success_automatic_capture(stripe_connector):
    payment_id = new_id("ok")
    result = await stripe_connector.charge(charge_request(payment_id))
    assert (result.status, result.amount) == (SUCCEEDED, 5000)
    assert result.processor_ref.startswith("pi_")
    looked = await stripe_connector.lookup(payment_id, result.processor_ref)
    assert (looked.status, looked.processor_ref) == (SUCCEEDED, result.processor_ref)
    # Voiding what was captured fails: a refund is the way back.
    voided = await stripe_connector.void(payment_id, result.processor_ref)
    assert (voided.status, voided.failure_code) == (FAILED, ALREADY_CAPTURED)


async def test_decline_is_failed_with_the_code_and_found_by_lookup(stripe_connector):
    payment_id = new_id("declined")
    result = await stripe_connector.charge(charge_request(payment_id, "declined"))
    assert (result.status, result.failure_code) == (FAILED, "card_declined")
    # Looked up by Flint's payment id alone (the decline's answer may not name the PaymentIntent).
    looked = await stripe_connector.lookup(payment_id, None)
    assert (looked.status, looked.failure_code) == (FAILED, "card_declined")
    assert looked.processor_ref.startswith("pi_")


async def test_three_d_secure_requires_action_then_approved_or_denied(stripe_connector, localstripe):
    payment_id = new_id("3ds")
    pending = await stripe_connector.charge(charge_request(payment_id, "three_d_secure"))
    assert pending.status == REQUIRES_ACTION and pending.processor_ref.startswith("pi_")
    assert (await stripe_connector.lookup(payment_id, None)).status == REQUIRES_ACTION
    localstripe.authenticate(pending.processor_ref, success=True)  # the buyer passes the check
    done = await stripe_connector.complete_action(pending.processor_ref, True)
    assert (done.status, done.amount) == (SUCCEEDED, 5000)

    denied_id = new_id("3ds_denied")
    pending = await stripe_connector.charge(charge_request(denied_id, "three_d_secure", capture=MANUAL))
    denied = await stripe_connector.complete_action(pending.processor_ref, False, capture=MANUAL)
    assert (denied.status, denied.failure_code) == (FAILED, "authentication_failed")
    assert (await stripe_connector.lookup(denied_id, pending.processor_ref)).status == CANCELED

    failed_id = new_id("3ds_failed")
    pending = await stripe_connector.charge(charge_request(failed_id, "three_d_secure"))
    localstripe.authenticate(pending.processor_ref, success=False)  # the issuer refuses the buyer
    failed = await stripe_connector.complete_action(pending.processor_ref, True)
    assert (failed.status, failed.failure_code) == (FAILED, "authentication_failed")


async def test_three_d_secure_with_manual_capture_authorizes(stripe_connector, localstripe):
    payment_id = new_id("3ds_manual")
    pending = await stripe_connector.charge(charge_request(payment_id, "three_d_secure", capture=MANUAL))
    localstripe.authenticate(pending.processor_ref, success=True)
    authorized = await stripe_connector.complete_action(pending.processor_ref, True, capture=MANUAL)
    assert (authorized.status, authorized.amount) == (AUTHORIZED, 5000)
    captured = await stripe_connector.capture(payment_id, authorized.processor_ref, 5000, "EUR")
    assert captured.status == SUCCEEDED


async def test_refunds_full_and_partial(stripe_connector):
    payment_id = new_id("refund")
    paid = await stripe_connector.charge(charge_request(payment_id))
    first = await stripe_connector.refund(paid.processor_ref, 1000, "EUR", f"re_{payment_id}_1")
    assert first.status == SUCCEEDED and first.processor_ref.startswith("re_")
    rest = await stripe_connector.refund(paid.processor_ref, 4000, "EUR", f"re_{payment_id}_2")
    assert rest.status == SUCCEEDED
    # A refund Stripe refuses (4xx: here an unknown PaymentIntent) is a definite failure, not an unknown
    # outcome. (localstripe accepts a refund of more than is left; Flint's refund service never asks one.)
    refused = await stripe_connector.refund("pi_doesnotexist", 100, "EUR", f"re_{payment_id}_3")
    assert (refused.status, refused.failure_code) == (FAILED, "refund_failed")


async def test_manual_capture_full(stripe_connector):
    payment_id = new_id("manual")
    authorized = await stripe_connector.charge(charge_request(payment_id, capture=MANUAL))
    assert (authorized.status, authorized.amount) == (AUTHORIZED, 5000)
    assert (await stripe_connector.lookup(payment_id, None)).status == AUTHORIZED
    captured = await stripe_connector.capture(payment_id, authorized.processor_ref, 5000, "EUR")
    assert (captured.status, captured.amount) == (SUCCEEDED, 5000)
    assert (await stripe_connector.lookup(payment_id, authorized.processor_ref)).status == SUCCEEDED
    # Capturing again (a retry): it is captured, whatever the server says about the second request.
    again = await stripe_connector.capture(payment_id, authorized.processor_ref, 5000, "EUR")
    assert again.status == SUCCEEDED
    refunded = await stripe_connector.refund(captured.processor_ref, 5000, "EUR", f"re_{payment_id}")
    assert refunded.status == SUCCEEDED


async def test_partial_capture_reports_the_captured_amount(stripe_connector):
    payment_id = new_id("partial")
    authorized = await stripe_connector.charge(charge_request(payment_id, capture=MANUAL))
    captured = await stripe_connector.capture(payment_id, authorized.processor_ref, 1200, "EUR")
    # localstripe does not reflect amount_to_capture in the PaymentIntent (nor says amount_received):
    # the connector reports the amount it captured, never more.
    assert (captured.status, captured.amount) == (SUCCEEDED, 1200)


async def test_void_releases_the_authorization(stripe_connector):
    payment_id = new_id("void")
    authorized = await stripe_connector.charge(charge_request(payment_id, capture=MANUAL))
    voided = await stripe_connector.void(payment_id, authorized.processor_ref)
    assert (voided.status, voided.processor_ref) == (CANCELED, authorized.processor_ref)
    assert (await stripe_connector.lookup(payment_id, None)).status == CANCELED
    # Voiding again is harmless; capturing a released authorization fails for good.
    assert (await stripe_connector.void(payment_id, authorized.processor_ref)).status == CANCELED
    failed = await stripe_connector.capture(payment_id, authorized.processor_ref, 5000, "EUR")
    assert (failed.status, failed.failure_code) == (FAILED, AUTHORIZATION_EXPIRED)


async def test_lookup_and_void_of_a_payment_stripe_never_saw(stripe_connector):
    looked = await stripe_connector.lookup(new_id("never"), None)
    assert (looked.status, looked.failure_code) == (FAILED, NOT_FOUND)
    assert (await stripe_connector.void(new_id("never"), None)).status == CANCELED
    assert (await stripe_connector.lookup(new_id("never"), "pi_doesnotexist")).failure_code == NOT_FOUND


def test_missing_and_unknown_fields_are_tolerated():
    # Only an id and a status: amounts absent.
    assert map_payment_intent({"id": "pi_1", "status": "succeeded"}).status == SUCCEEDED
    assert map_payment_intent({"id": "pi_1", "status": "succeeded"}).amount is None
    assert map_payment_intent({"id": "pi_1", "status": "requires_capture", "amount": 300}).amount == 300
    # amount_received wins over amount (a partial capture on Stripe).
    assert map_payment_intent({"status": "succeeded", "amount": 500, "amount_received": 200}).amount == 200
    # What cannot be mapped settles later: never a decline.
    for intent in ({}, {"status": "processing"}, {"status": "requires_confirmation"}, {"status": "new_in_2030"},
                   {"status": "requires_payment_method"}, {"id": 7, "status": None}, None):
        assert map_payment_intent(intent).status == UNKNOWN, intent
    declined = map_payment_intent({"id": "pi_1", "status": "requires_payment_method",
                                   "last_payment_error": {"code": "card_declined", "decline_code": "insufficient_funds"}})
    assert (declined.status, declined.failure_code) == (FAILED, "insufficient_funds")
    odd = map_payment_intent({"status": "requires_payment_method", "last_payment_error": {"code": "do_not_honor"}})
    assert odd.failure_code == "card_declined"
    lapsed = map_payment_intent({"id": "pi_1", "status": "canceled", "cancellation_reason": "automatic"})
    assert (lapsed.status, lapsed.failure_code) == (CANCELED, AUTHORIZATION_EXPIRED)


@pytest.mark.parametrize("mode", ["hang", "drop"])
async def test_a_processor_that_hangs_or_dies_mid_capture_is_unknown_then_settled_by_lookup(
        stripe_connector, localstripe, mode):
    payment_id = new_id(f"capture_{mode}")
    authorized = await stripe_connector.charge(charge_request(payment_id, capture=MANUAL))
    async with SilentServer(mode) as url:
        broken = StripeProcessor(SECRET_KEY, api_base=url, timeout_seconds=0.5)
        started = time.monotonic()
        result = await broken.capture(payment_id, authorized.processor_ref, 5000, "EUR")
        assert time.monotonic() - started < 5  # bounded by the connector's own HTTP timeout
        assert (result.status, result.processor_ref) == (UNKNOWN, authorized.processor_ref)  # never FAILED
        assert (await broken.void(payment_id, authorized.processor_ref)).status == UNKNOWN
        assert (await broken.lookup(payment_id, authorized.processor_ref)).status == UNKNOWN
        assert (await broken.lookup(payment_id, None)).status == UNKNOWN
        with pytest.raises(ProcessorUnavailable):
            await broken.refund(authorized.processor_ref, 100, "EUR", f"re_{payment_id}")
        await broken.aclose()
    # The processor is back: the look-up says where the payment stands, and the capture is re-driven.
    assert (await stripe_connector.lookup(payment_id, None)).status == AUTHORIZED
    captured = await stripe_connector.capture(payment_id, authorized.processor_ref, 5000, "EUR")
    assert captured.status == SUCCEEDED
    assert (await stripe_connector.lookup(payment_id, None)).status == SUCCEEDED


async def test_a_charge_whose_answer_is_lost_is_unknown_and_found_by_payment_id(stripe_connector):
    payment_id = new_id("charge_hang")
    async with SilentServer("hang") as url:
        broken = StripeProcessor(SECRET_KEY, api_base=url, timeout_seconds=0.5)
        result = await broken.charge(charge_request(payment_id))
        assert (result.status, result.processor_ref) == (UNKNOWN, None)
        await broken.aclose()
    # That request never reached Stripe: nothing is held under the payment id.
    assert (await stripe_connector.lookup(payment_id, None)).failure_code == NOT_FOUND
    # One that did (its answer lost after Stripe made it) is found by the payment id in its metadata.
    made = await stripe_connector.charge(charge_request(payment_id))
    looked = await stripe_connector.lookup(payment_id, None)
    assert (looked.status, looked.processor_ref) == (SUCCEEDED, made.processor_ref)


async def test_a_refused_request_is_failed_not_unknown(localstripe):
    wrong_key = StripeProcessor("not_a_secret_key", api_base=localstripe.url, timeout_seconds=5)
    result = await wrong_key.charge(charge_request(new_id("badkey")))
    assert (result.status, result.failure_code) == (FAILED, "processing_error")  # refused: nothing was made
    await wrong_key.aclose()


async def test_flint_processor_stripe_picks_the_connector_from_the_environment(localstripe):
    from flint.config import Config
    from flint.processors import SimulatedProcessor
    from flint.runtime import processor_for

    env = {"FLINT_ENV": "development", "FLINT_SECRET_KEY": "k" * 32, "FLINT_PROCESSOR": "stripe",
           "FLINT_STRIPE_SECRET_KEY": SECRET_KEY, "FLINT_STRIPE_API_BASE": localstripe.url + "/"}
    config = Config.from_env(env)
    assert SECRET_KEY not in repr(config)  # the key never reaches a log line
    connector = processor_for(config)
    assert isinstance(connector, StripeProcessor)
    assert (await connector.charge(charge_request(new_id("env")))).status == SUCCEEDED
    await connector.aclose()
    assert isinstance(processor_for(Config.from_env({**env, "FLINT_PROCESSOR": "simulated"})), SimulatedProcessor)
    assert isinstance(processor_for(Config.from_env({"FLINT_ENV": "development", "FLINT_SECRET_KEY": "k" * 32})),
                      SimulatedProcessor)  # the default
    with pytest.raises(ValueError, match="FLINT_STRIPE_SECRET_KEY"):
        Config.from_env({**env, "FLINT_STRIPE_SECRET_KEY": ""})
    with pytest.raises(ValueError, match="FLINT_PROCESSOR"):
        Config.from_env({**env, "FLINT_PROCESSOR": "adyen"})
