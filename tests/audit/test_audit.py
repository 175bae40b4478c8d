"""The audit trail (flint.audit, migration 0017; docs/api.md 15) on every backend: rows written in the
action's own transaction with its actor, a merchant's own only, newest first by keyset, never a secret;
and each service that records in it (merchants: keys and settings; webhooks: roll secret and retry;
oauth: approve update; staff: invite, revoke, remove) records exactly what it did, and nothing when it
refused or changed nothing."""
from __future__ import annotations

import itertools
import json
import secrets

import pytest

from flint.actors import Actor
from flint.apps import service as apps
from flint.audit import service as audit
from flint.audit.models import ACTIONS
from flint.errors import FlintError
from flint.merchants import service as merchants
from flint.oauth import service as oauth
from flint.oauth.service import follow_app_change
from flint.staff import service as staff
from flint.webhooks import service as webhooks
from support.factories import make_merchant, make_order

PASSWORD = "a long and correct password"
_counter = itertools.count(1)


async def _trail(rt, merchant_id: str) -> list[tuple]:
    """(action, actor, object id, changes) of the merchant's trail, oldest first."""
    entries, more = await audit.list_entries(rt, merchant_id, 100)
    assert not more
    return [(e.action, e.actor.to_dict(), e.object_id, e.changed) for e in reversed(entries)]


async def _owner(rt, merchant):
    async with rt.db.transaction() as conn:
        return await staff.ensure_owner(conn, merchant)


async def _member(rt, owner, role: str):
    _, token = await staff.invite(rt, owner, f"{role}{next(_counter)}-{secrets.token_hex(3)}@team.example", role)
    return await staff.accept_invitation(rt, token, PASSWORD)


# -- the store and the service -------------------------------------------------------------------------------

async def test_entries_are_the_merchants_own_newest_first_and_paged_by_keyset(rt):
    mine, _ = await make_merchant(rt)
    theirs, _ = await make_merchant(rt)
    staff_actor = Actor("staff", "stf_someone")
    async with rt.db.transaction() as conn:
        written = [await audit.record(conn, merchant_id=mine.id, actor=staff_actor, action="api_key.created",
                                      object_id=f"key_{i}") for i in range(7)]
        their_entry = await audit.record(conn, merchant_id=theirs.id, actor=Actor("merchant", theirs.id),
                                         action="api_key.revoked", object_id="key_theirs")
    first, more = await audit.list_entries(rt, mine.id, 3)
    assert more and [e.object_id for e in first] == ["key_6", "key_5", "key_4"]
    assert first[0].actor == staff_actor and first[0].changed == {}
    second, more = await audit.list_entries(rt, mine.id, 3, first[-1].id)
    third, more_after = await audit.list_entries(rt, mine.id, 3, second[-1].id)
    assert more and not more_after
    assert [e.id for e in first + second + third] == [e.id for e in reversed(written)]  # each once, in order
    # Another merchant's entry is no cursor here (as an unknown id), and never listed.
    with pytest.raises(FlintError) as refused:
        await audit.list_entries(rt, mine.id, 3, their_entry.id)
    assert refused.value.code == "starting_after_invalid"
    assert [e.id for e in (await audit.list_entries(rt, theirs.id, 10))[0]] == [their_entry.id]


async def test_an_entry_never_carries_a_secret_nor_an_unknown_action(rt):
    merchant, _ = await make_merchant(rt)
    for changes in ({"secret": "whsec_x"}, {"new_secret_key": "sk_test_x"}, {"token_hash": "x"},
                    {"password": "x"}):
        with pytest.raises(ValueError):
            async with rt.db.transaction() as conn:
                await audit.record(conn, merchant_id=merchant.id, actor=Actor("merchant", merchant.id),
                                   action="settings.updated", object_id=merchant.id, changes=changes)
    with pytest.raises(AssertionError):
        async with rt.db.transaction() as conn:
            await audit.record(conn, merchant_id=merchant.id, actor=Actor("merchant", merchant.id),
                               action="merchant.deleted", object_id=merchant.id)
    assert await _trail(rt, merchant.id) == []
    assert set(ACTIONS) == {"api_key.created", "api_key.revoked", "settings.updated",
                            "webhook_endpoint.secret_rolled", "webhook_delivery.retried",
                            "installation.update_approved", "staff.invited", "staff.invitation_revoked",
                            "staff.removed", "payment_link.sent"}


# -- merchants: keys and settings ------------------------------------------------------------------------------

async def test_keys_are_recorded_with_their_actor_and_never_their_value(rt):
    merchant, first_secret = await make_merchant(rt)
    member = staff.actor(await _owner(rt, merchant))
    [first] = await merchants.list_keys(rt, merchant.id)
    key, secret = await merchants.create_key(rt, merchant.id, member)
    await merchants.revoke_key(rt, merchant.id, first.id, Actor("merchant", merchant.id))
    # Refused (the last live key; an unknown key): nothing recorded, the transaction rolled back.
    with pytest.raises(FlintError):
        await merchants.revoke_key(rt, merchant.id, key.id, member)
    with pytest.raises(FlintError):
        await merchants.revoke_key(rt, merchant.id, "key_unknown", member)
    assert await _trail(rt, merchant.id) == [
        ("api_key.created", member.to_dict(), key.id, {}),
        ("api_key.revoked", {"type": "merchant", "id": merchant.id}, first.id, {})]
    async with rt.db.read() as conn:
        stored = json.dumps(await conn.fetch_all("SELECT * FROM audit_log WHERE merchant_id = :m", {"m": merchant.id}))
    assert secret not in stored and first_secret not in stored and key.last4 not in stored.replace(key.id, "")
    # Without an actor (the command line, the demo) the merchant itself made it.
    other, _ = await merchants.create_key(rt, merchant.id)
    assert (await _trail(rt, merchant.id))[-1] == ("api_key.created", {"type": "merchant", "id": merchant.id},
                                                   other.id, {})


async def test_settings_changes_are_recorded_with_what_changed_and_a_no_op_is_not(rt):
    merchant, _ = await make_merchant(rt, origins=["https://a.example"])
    member = staff.actor(await _owner(rt, merchant))
    await merchants.update_merchant(rt, merchant.id, origins=["https://a.example", "https://b.example"], actor=member)
    await merchants.update_merchant(rt, merchant.id, origins=["https://b.example"], brand_color="#0A7C4B", actor=member)
    await merchants.update_merchant(rt, merchant.id, origins=["https://b.example"], brand_color="#0a7c4b",
                                    actor=member)  # the same again: nothing changed, nothing recorded
    with pytest.raises(FlintError):
        await merchants.update_merchant(rt, merchant.id, brand_color="green", actor=member)
    assert await _trail(rt, merchant.id) == [
        ("settings.updated", member.to_dict(), merchant.id,
         {"allowed_origins": {"added": ["https://b.example"], "removed": []}}),
        ("settings.updated", member.to_dict(), merchant.id,
         {"allowed_origins": {"added": [], "removed": ["https://a.example"]},
          "brand_color": {"from": "#4f46e5", "to": "#0a7c4b"}})]


# -- webhooks: roll secret and retry -----------------------------------------------------------------------------

async def test_rolling_a_secret_and_retrying_a_delivery_are_recorded(rt):
    merchant, _ = await make_merchant(rt)
    member = staff.actor(await _owner(rt, merchant))
    endpoint, first_secret = await webhooks.create_endpoint(rt, merchant.id, url="https://hooks.example/a",
                                                            events=["order.*"], description=None)
    _, rolled = await webhooks.rotate_secret(rt, merchant.id, endpoint.id, actor=member)
    await make_order(rt, merchant.id)
    [delivery], _ = await webhooks.list_deliveries(rt, merchant.id, endpoint.id, 10, None)
    await webhooks.retry_delivery(rt, merchant.id, delivery.id, actor=member)
    await webhooks.update_endpoint(rt, merchant.id, endpoint.id, status="disabled")
    with pytest.raises(FlintError):  # refused (a disabled endpoint): nothing recorded
        await webhooks.retry_delivery(rt, merchant.id, delivery.id, actor=member)
    trail = await _trail(rt, merchant.id)
    assert [(action, actor, object_id) for action, actor, object_id, _ in trail] == [
        ("webhook_endpoint.secret_rolled", member.to_dict(), endpoint.id),
        ("webhook_delivery.retried", member.to_dict(), delivery.id)]
    assert set(trail[0][3]) == {"previous_signs_until"}
    assert trail[1][3] == {"endpoint_id": endpoint.id, "event_id": delivery.event_id, "event_type": "order.created",
                           "status_before": "pending"}
    async with rt.db.read() as conn:
        stored = json.dumps(await conn.fetch_all("SELECT * FROM audit_log WHERE merchant_id = :m", {"m": merchant.id}))
    assert first_secret not in stored and rolled not in stored and "whsec_" not in stored


# -- oauth: an app's update approved -----------------------------------------------------------------------------

async def _installed_with_update(rt, merchant_id: str):
    developer, _ = await make_merchant(rt)
    app, _, _ = await apps.create_app(rt, developer.id, name="Stock Sync", redirect_uris=["http://127.0.0.1:9/cb"],
                                      scopes=["orders:read"])
    verifier = secrets.token_urlsafe(48)
    request = await oauth.check_authorization_request(rt, {
        "client_id": app.client_id, "redirect_uri": "http://127.0.0.1:9/cb", "response_type": "code",
        "code_challenge": oauth.s256(verifier), "code_challenge_method": "S256", "scope": "orders:read"})
    token = await oauth.exchange_code(rt, app, await oauth.issue_code(rt, request, merchant_id),
                                      "http://127.0.0.1:9/cb", verifier)
    await apps.update_app(rt, developer.id, app.id, {"scopes": ["orders:read", "refunds:write"]}, follow_app_change)
    return app, token["installation_id"]


async def test_approving_an_apps_update_is_recorded_with_what_it_added(rt):
    merchant, _ = await make_merchant(rt)
    member = staff.actor(await _owner(rt, merchant))
    app, installation_id = await _installed_with_update(rt, merchant.id)
    await oauth.approve_update(rt, merchant.id, installation_id, member)
    with pytest.raises(FlintError):  # nothing waits any more: refused, nothing recorded
        await oauth.approve_update(rt, merchant.id, installation_id, member)
    [(action, actor, object_id, changes)] = await _trail(rt, merchant.id)
    assert (action, actor, object_id) == ("installation.update_approved", member.to_dict(), installation_id)
    assert changes["app_id"] == app.id and changes["requested_at"].endswith("Z")
    assert changes["added"] == {"scopes": ["refunds:write"], "webhook_events": [], "hooks": [], "checkout_fields": []}


async def test_an_apps_own_endpoint_is_recorded_as_the_app_when_no_actor_is_named(rt):
    merchant, _ = await make_merchant(rt)
    app, installation_id = await _installed_with_update(rt, merchant.id)
    owner = webhooks.Owner(installation_id=installation_id, app_id=app.id, scopes=("orders:read",))
    endpoint, _ = await webhooks.create_endpoint(rt, merchant.id, url="https://hooks.example/app",
                                                 events=["order.*"], description=None, owner=owner)
    await webhooks.rotate_secret(rt, merchant.id, endpoint.id, owner)
    assert (await _trail(rt, merchant.id))[0][:3] == ("webhook_endpoint.secret_rolled", {"type": "app", "id": app.id},
                                                      endpoint.id)


# -- staff: the team's verbs and the Activity read ----------------------------------------------------------------

async def test_team_verbs_are_recorded_as_the_member_who_acted(rt):
    merchant, _ = await make_merchant(rt)
    owner = await _owner(rt, merchant)
    invitation, _ = await staff.invite(rt, owner, "Pending@Team.Example", "support")
    await staff.revoke_invitation(rt, owner, invitation.id)
    await staff.revoke_invitation(rt, owner, invitation.id)  # already revoked: nothing more to record
    developer = await _member(rt, owner, "developer")
    await staff.remove(rt, owner, developer.id)
    with pytest.raises(FlintError):  # the last owner stays: refused, nothing recorded
        await staff.remove(rt, owner, owner.id)
    me = staff.actor(owner).to_dict()
    trail = await _trail(rt, merchant.id)
    assert [(action, actor, object_id) for action, actor, object_id, _ in trail] == [
        ("staff.invited", me, invitation.id), ("staff.invitation_revoked", me, invitation.id),
        ("staff.invited", me, trail[2][2]), ("staff.removed", me, developer.id)]
    assert trail[0][3] == trail[1][3] == {"email": "pending@team.example", "role": "support"}
    assert trail[3][3] == {"email": developer.email, "role": "developer"}


async def test_activity_is_for_owners_names_members_by_email_and_pages(rt):
    merchant, _ = await make_merchant(rt)
    owner = await _owner(rt, merchant)
    developer = await _member(rt, owner, "developer")
    for i in range(staff.ACTIVITY_PAGE + 2):
        await merchants.update_merchant(rt, merchant.id, brand_color=f"#0000{i:02x}", actor=staff.actor(developer))
    await staff.remove(rt, owner, developer.id)  # a removed member is named by their id only
    other, _ = await make_merchant(rt)
    other_owner = await _owner(rt, other)
    their_invitation, _ = await staff.invite(rt, other_owner, "theirs@team.example", "support")
    await merchants.create_key(rt, merchant.id)  # by the merchant's own key: no staff email

    first = await staff.activity(rt, owner)
    assert len(first.entries) == staff.ACTIVITY_PAGE and first.older == first.entries[-1].id
    assert first.entries[0].action == "api_key.created" and first.who(first.entries[0]) == f"merchant {merchant.id}"
    assert first.entries[1].action == "staff.removed" and first.who(first.entries[1]) == owner.email
    assert first.who(first.entries[2]) == f"former member {developer.id}"
    assert developer.email not in {first.who(e) for e in first.entries}
    rest = await staff.activity(rt, owner, first.older)
    assert rest.older is None
    listed = [e.id for e in first.entries + rest.entries]
    assert len(listed) == len(set(listed)) == 1 + 1 + staff.ACTIVITY_PAGE + 2 + 1  # invite, removal, colours, key
    assert their_invitation.id not in {e.object_id for e in first.entries + rest.entries}
    # A cursor of another merchant's entry gives the first page, not theirs.
    [their_entry] = (await audit.list_entries(rt, other.id, 10))[0]
    assert [e.id for e in (await staff.activity(rt, owner, their_entry.id)).entries] == listed[:staff.ACTIVITY_PAGE]
    # Owners only (team:read), in the service.
    support = await _member(rt, owner, "support")
    with pytest.raises(FlintError) as refused:
        await staff.activity(rt, support)
    assert refused.value.code == "role_forbidden"
