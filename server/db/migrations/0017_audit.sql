-- The audit trail (docs/api.md 15): who did what to a merchant's keys, settings, webhooks, apps and
-- team where no event records it. One row per action, written in the action's own transaction;
-- never changed. actor_type/actor_id as on events ({type: "staff" | "merchant" | "app", id}); changes is
-- a small JSON object of what changed, never a secret or key material.
CREATE TABLE audit_log (
    id          TEXT PRIMARY KEY,
    merchant_id TEXT NOT NULL REFERENCES merchants (id),
    actor_type  TEXT NOT NULL,
    actor_id    TEXT,
    action      TEXT NOT NULL,
    object_id   TEXT,
    changes     TEXT NOT NULL,
    created_at  TEXT NOT NULL
);
-- The Team page's Activity list: a merchant's newest first, keyset on (created_at, id).
CREATE INDEX audit_log_merchant ON audit_log (merchant_id, created_at, id);
