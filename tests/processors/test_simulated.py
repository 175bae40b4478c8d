"""The simulated connector (flint.processors.simulated) through the connector interface: automatic and
manual capture, partial capture, void, an authorization the processor itself lets lapse, and look-up,
each answer derived from the processor's own reference so that any process answers the same."""
import pytest

from flint.cards import Card
from flint.processors import (
    ALREADY_CAPTURED,
    AUTHORIZATION_EXPIRED,
    AUTHORIZATION_EXPIRES,
    AUTHORIZED,
    CANCELED,
    FAILED,
    INVALID_AMOUNT,
    MANUAL,
    NOT_FOUND,
    REFUND_FAILS,
    REQUIRES_ACTION,
    SUCCEEDED,
    THREE_D_SECURE,
    ChargeRequest,
    SimulatedProcessor,
)

GOOD = "4242424242424242"


def request(number=GOOD, amount=5000, capture="automatic", payment_id="pay_test"):
    return ChargeRequest(payment_id, amount, "EUR", Card(number, 12, 2034, "123"), capture)


@pytest.fixture
def sim():
    return SimulatedProcessor()


async def test_automatic_capture_succeeds_and_looks_up_as_succeeded(sim):
    result = await sim.charge(request())
    assert (result.status, result.amount) == (SUCCEEDED, 5000)
    assert (await sim.lookup("pay_test", result.processor_ref)).status == SUCCEEDED
    # Voiding a captured charge fails as at a real processor: only a refund gives it back.
    assert (await sim.void("pay_test", result.processor_ref)).failure_code == ALREADY_CAPTURED
    assert (await sim.refund(result.processor_ref, 100, "EUR", "re_1")).status == SUCCEEDED


async def test_decline_is_failed_and_stays_failed_on_lookup(sim):
    result = await sim.charge(request("4000000000009995", capture=MANUAL))
    assert (result.status, result.failure_code) == (FAILED, "insufficient_funds")
    looked = await sim.lookup("pay_test", result.processor_ref)
    assert (looked.status, looked.failure_code) == (FAILED, "insufficient_funds")
    # Nothing is held for a decline: releasing it is a no-op that says so.
    assert (await sim.void("pay_test", result.processor_ref)).status == CANCELED


async def test_manual_capture_authorizes_then_captures_in_full(sim):
    auth = await sim.charge(request(capture=MANUAL))
    assert (auth.status, auth.amount) == (AUTHORIZED, 5000)
    looked = await sim.lookup("pay_test", auth.processor_ref)
    assert (looked.status, looked.amount) == (AUTHORIZED, 5000)
    captured = await sim.capture("pay_test", auth.processor_ref, 5000, "EUR")
    assert (captured.status, captured.amount) == (SUCCEEDED, 5000)
    assert (await sim.lookup("pay_test", captured.processor_ref)).status == SUCCEEDED
    # A retry of the capture under the captured ref (its answer was lost, the ref kept) answers the same.
    again = await sim.capture("pay_test", captured.processor_ref, 5000, "EUR")
    assert (again.status, again.processor_ref) == (SUCCEEDED, captured.processor_ref)
    # So does a retry under the authorization's ref: it is derived, not random.
    assert (await sim.capture("pay_test", auth.processor_ref, 5000, "EUR")).processor_ref == captured.processor_ref


async def test_partial_capture_captures_the_amount_and_never_more_than_authorized(sim):
    auth = await sim.charge(request(amount=5000, capture=MANUAL))
    too_much = await sim.capture("pay_test", auth.processor_ref, 5001, "EUR")
    assert (too_much.status, too_much.failure_code) == (FAILED, INVALID_AMOUNT)
    assert (await sim.capture("pay_test", auth.processor_ref, 0, "EUR")).failure_code == INVALID_AMOUNT
    part = await sim.capture("pay_test", auth.processor_ref, 1200, "EUR")
    assert (part.status, part.amount) == (SUCCEEDED, 1200)
    looked = await sim.lookup("pay_test", part.processor_ref)
    assert (looked.status, looked.amount) == (SUCCEEDED, 1200)


async def test_void_releases_an_authorization_and_it_can_no_longer_be_captured(sim):
    auth = await sim.charge(request(capture=MANUAL))
    voided = await sim.void("pay_test", auth.processor_ref)
    assert voided.status == CANCELED and voided.processor_ref != auth.processor_ref
    assert (await sim.lookup("pay_test", voided.processor_ref)).status == CANCELED
    assert (await sim.void("pay_test", voided.processor_ref)).status == CANCELED  # twice: the same
    failed = await sim.capture("pay_test", voided.processor_ref, 5000, "EUR")
    assert (failed.status, failed.failure_code) == (FAILED, AUTHORIZATION_EXPIRED)


async def test_the_processor_lets_an_authorization_lapse_after_its_ttl(advance_clock):
    sim = SimulatedProcessor(authorization_ttl_seconds=60)
    auth = await sim.charge(request(capture=MANUAL))
    assert (await sim.lookup("pay_test", auth.processor_ref)).status == AUTHORIZED
    advance_clock(61)  # Flint's clock: the test clock ages the processor's authorizations too
    looked = await sim.lookup("pay_test", auth.processor_ref)
    assert (looked.status, looked.failure_code) == (CANCELED, AUTHORIZATION_EXPIRED)
    failed = await sim.capture("pay_test", auth.processor_ref, 5000, "EUR")
    assert (failed.status, failed.failure_code) == (FAILED, AUTHORIZATION_EXPIRED)
    # Releasing a lapsed authorization is harmless.
    assert (await sim.void("pay_test", auth.processor_ref)).status == CANCELED


async def test_the_lapsing_test_card_authorizes_and_lapses_at_once(sim):
    auth = await sim.charge(request(AUTHORIZATION_EXPIRES, capture=MANUAL))
    assert auth.status == AUTHORIZED
    assert (await sim.lookup("pay_test", auth.processor_ref)).status == CANCELED
    assert (await sim.capture("pay_test", auth.processor_ref, 5000, "EUR")).failure_code == AUTHORIZATION_EXPIRED
    # With automatic capture the card simply pays.
    assert (await sim.charge(request(AUTHORIZATION_EXPIRES))).status == SUCCEEDED


async def test_three_d_secure_then_manual_capture(sim):
    pending = await sim.charge(request(THREE_D_SECURE, amount=700, capture=MANUAL))
    assert pending.status == REQUIRES_ACTION
    assert (await sim.lookup("pay_test", pending.processor_ref)).status == REQUIRES_ACTION
    auth = await sim.complete_action(pending.processor_ref, True, capture=MANUAL)
    assert (auth.status, auth.amount) == (AUTHORIZED, 700)
    assert (await sim.capture("pay_test", auth.processor_ref, 701, "EUR")).failure_code == INVALID_AMOUNT
    assert (await sim.capture("pay_test", auth.processor_ref, 700, "EUR")).status == SUCCEEDED
    denied = await sim.complete_action(pending.processor_ref, False, capture=MANUAL)
    assert (denied.status, denied.failure_code) == (FAILED, "authentication_failed")
    automatic = await sim.complete_action(pending.processor_ref, True)
    assert (automatic.status, automatic.amount) == (SUCCEEDED, 700)


async def test_refund_fails_card_keeps_failing_refunds_after_a_manual_capture(sim):
    auth = await sim.charge(request(REFUND_FAILS, capture=MANUAL))
    captured = await sim.capture("pay_test", auth.processor_ref, 3000, "EUR")
    assert captured.status == SUCCEEDED
    assert (await sim.refund(captured.processor_ref, 3000, "EUR", "re_1")).status == FAILED


async def test_lookup_without_a_ref_says_nothing_is_held(sim):
    # The simulated processor always answers, so a payment whose call never returned never reached it.
    looked = await sim.lookup("pay_never", None)
    assert (looked.status, looked.failure_code) == (FAILED, NOT_FOUND)
    assert (await sim.void("pay_never", None)).status == CANCELED


async def test_refs_issued_before_issue_18_still_work(sim):
    # Stored refs from before amounts and expiry were encoded: authorized for any amount, never lapsing.
    assert (await sim.lookup("pay_old", "sim_auth_0123456789abcdef01234567")).status == AUTHORIZED
    captured = await sim.capture("pay_old", "sim_auth_0123456789abcdef01234567", 900, "EUR")
    assert (captured.status, captured.amount) == (SUCCEEDED, 900)
    assert (await sim.complete_action("sim_3ds_0123456789abcdef01234567", True)).status == SUCCEEDED
    assert (await sim.lookup("pay_old", "sim_ch_0123456789abcdef01234567")).status == SUCCEEDED
