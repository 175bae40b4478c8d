"""What a merchant approved for an installation, and how an app's changes compare with it (docs/api.md 12).

A consent is what the consent page showed: the scopes, the event types (as the concrete list the page
named, not the app's filters: a later event type that a "*" would match was never shown), the hooks and
the checkout fields. An app's new settings *widen* a consent when they add anything to any of the four;
the part of a change that narrows applies at once, the part that widens waits for the merchant.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from flint.apps.models import App
from flint.event_types import EVENT_TYPES
from flint.scopes import APP_LIFECYCLE_PREFIX


def expand(filters: list[str]) -> list[str]:
    """The concrete event types a list of filters ("*", "order.*", "order.paid") matches, in
    EVENT_TYPES order; app.* is left out (an app always hears about itself, consent or not)."""
    def matches(event_type: str) -> bool:
        return any(f == "*" or f == event_type or (f.endswith(".*") and event_type.startswith(f[:-1]))
                   for f in filters)
    return [t for t in EVENT_TYPES if matches(t) and not t.startswith(APP_LIFECYCLE_PREFIX)]


@dataclass(frozen=True)
class Consent:
    scopes: tuple[str, ...] = ()
    webhook_events: tuple[str, ...] = ()
    hooks: tuple[str, ...] = ()
    checkout_fields: tuple[Any, ...] = field(default=())  # the field definitions (dicts), by key

    @classmethod
    def of_app(cls, app: App, scopes: list[str] | None = None) -> "Consent":
        """What an app asks for now; ``scopes``: the subset an authorization request names."""
        events = expand(app.event_filters) if app.webhook_url else []
        return cls(scopes=tuple(scopes if scopes is not None else app.scope_list), webhook_events=tuple(events),
                   hooks=tuple(app.hook_list), checkout_fields=tuple(app.checkout_field_list))

    @classmethod
    def loads(cls, text: str | None) -> "Consent | None":
        if not text:
            return None
        data = json.loads(text)
        return cls(tuple(data["scopes"]), tuple(data["webhook_events"]), tuple(data["hooks"]),
                   tuple(data.get("checkout_fields", ())))

    def dumps(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    def to_dict(self) -> dict[str, Any]:
        return {"scopes": list(self.scopes), "webhook_events": list(self.webhook_events), "hooks": list(self.hooks),
                "checkout_fields": list(self.checkout_fields)}

    def _field_keys(self) -> set[str]:
        return {f["key"] for f in self.checkout_fields}

    def within(self, other: "Consent") -> bool:
        """Whether everything this asks for was already granted by ``other``."""
        return (set(self.scopes) <= set(other.scopes) and set(self.webhook_events) <= set(other.webhook_events)
                and set(self.hooks) <= set(other.hooks)
                and all(f in other.checkout_fields for f in self.checkout_fields))

    def narrowed_to(self, other: "Consent") -> "Consent":
        """This consent less whatever ``other`` no longer asks for (the part of a change that applies
        at once), keeping this one's order."""
        return Consent(tuple(s for s in self.scopes if s in other.scopes),
                       tuple(e for e in self.webhook_events if e in other.webhook_events),
                       tuple(h for h in self.hooks if h in other.hooks),
                       tuple(f for f in self.checkout_fields if f in other.checkout_fields))

    def added_in(self, new: "Consent") -> "Consent":
        """What ``new`` asks for beyond this consent (what an update page shows as added)."""
        return Consent(tuple(s for s in new.scopes if s not in self.scopes),
                       tuple(e for e in new.webhook_events if e not in self.webhook_events),
                       tuple(h for h in new.hooks if h not in self.hooks),
                       tuple(f for f in new.checkout_fields if f not in self.checkout_fields))

    def empty(self) -> bool:
        return not (self.scopes or self.webhook_events or self.hooks or self.checkout_fields)

