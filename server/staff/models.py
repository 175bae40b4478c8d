"""Staff: people with a role on one merchant (docs/api.md 15), and what each role may do.

The permission table is the one place roles are decided: the services refuse (staff.service.require)
and the console only hides what a role may not use. A permission names a console page's reading
(``...:read``) or an action (``refunds:write``, ``payments:capture``): every action the console offers
names exactly one.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from flint import clock

ROLES = ("owner", "developer", "support")

# What support may do (docs/api.md 15: "read everything but secrets; refund, capture, void, cancel, create,
# send and deactivate payment links"). API keys are secrets, so support does not even see their page.
SUPPORT = frozenset({
    "overview:read",
    "orders:read", "orders:cancel",
    "refunds:write",
    # Capture and Void (docs/api.md 17) move no more money than a refund and undo less: the people who
    # refund an order may also take or release its authorization (a shop ships, or the buyer cancels).
    "payments:capture", "payments:void",
    "links:read", "links:write",  # create, send and deactivate payment links
    "webhooks:read",  # endpoints, deliveries and attempts; never an endpoint's signing secret
    "apps:read",  # installations, what each consented to, hook calls
    "settings:read",
})
# Team: invite, remove, list the team and its invitations (owners only).
TEAM = frozenset({"team:read", "team:write"})
# Everything else a developer may do besides support's part.
DEVELOPER = SUPPORT | {
    "orders:redact",  # erase a buyer's personal data (docs/api.md 14)
    "webhooks:write",  # retry a delivery, add an endpoint, roll its secret (which shows the secret)
    "apps:write",  # approve an app's update, uninstall it
    "api_keys:read", "api_keys:write",
    "settings:write",
}
ALL = DEVELOPER | TEAM

PERMISSIONS: dict[str, frozenset[str]] = {
    "owner": ALL,
    "developer": frozenset(DEVELOPER),  # everything but Team
    "support": SUPPORT,
}

# The console's pages (docs/api.md 15 navigation, in order) and the permission each page needs: a role
# without it does not see the link and gets 403 on the URL.
PAGES = (
    ("Overview", "overview:read"),
    ("Orders", "orders:read"),
    ("Payment links", "links:read"),
    ("Webhooks", "webhooks:read"),
    ("Apps", "apps:read"),
    ("API keys", "api_keys:read"),
    ("Settings", "settings:read"),
    ("Team", "team:read"),
)


def allows(role: str, permission: str) -> bool:
    if permission not in ALL:
        # A misspelt permission must fail loudly, not quietly refuse (or allow) everyone.
        raise ValueError(f"unknown staff permission {permission!r}")
    return permission in PERMISSIONS.get(role, frozenset())


@dataclass(frozen=True)
class Staff:
    id: str
    merchant_id: str
    email: str  # lower-cased
    role: str
    password_hash: str
    created_at: str
    removed_at: str | None

    @property
    def live(self) -> bool:
        return self.removed_at is None

    def can(self, permission: str) -> bool:
        return self.live and allows(self.role, permission)

    @property
    def permissions(self) -> frozenset[str]:
        return PERMISSIONS.get(self.role, frozenset()) if self.live else frozenset()

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "object": "staff", "email": self.email, "role": self.role,
                "created_at": clock.public(self.created_at), "removed_at": clock.public(self.removed_at)}


@dataclass(frozen=True)
class Invitation:
    id: str
    merchant_id: str
    email: str
    role: str
    token_hash: str
    invited_by: str
    created_at: str
    expires_at: str
    accepted_at: str | None
    revoked_at: str | None
    staff_id: str | None

    def status(self, now: str) -> str:
        if self.accepted_at is not None:
            return "accepted"
        if self.revoked_at is not None:
            return "revoked"
        return "expired" if self.expires_at <= now else "pending"

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "object": "staff_invitation", "email": self.email, "role": self.role,
                "status": self.status(clock.now_iso()), "invited_by": self.invited_by,
                "created_at": clock.public(self.created_at), "expires_at": clock.public(self.expires_at),
                "accepted_at": clock.public(self.accepted_at), "staff_id": self.staff_id}


class OwnerSource(Protocol):
    """What ensure_owner needs of a merchant (flint.merchants.models.Merchant has it; staff sits below
    merchants, so it names the shape, not the class)."""
    id: str
    email: str
    password_hash: str
    created_at: str
