-- Webhooks (API.md 9): endpoints, one delivery per (endpoint, event) written in the same
-- transaction as the event (the outbox), and every attempt made for it.
CREATE TABLE webhook_endpoints (
    id                   TEXT PRIMARY KEY,
    merchant_id          TEXT NOT NULL REFERENCES merchants (id),
    url                  TEXT NOT NULL,
    events               TEXT NOT NULL,            -- JSON list: types, "prefix.*" or "*"
    description          TEXT,
    status               TEXT NOT NULL,            -- enabled | disabled | deleted
    disabled_reason      TEXT,
    -- Signing secrets, encrypted at rest (security.SecretBox); the previous one keeps signing
    -- beside the new one until previous_expires_at (rotation overlap).
    secret               TEXT NOT NULL,
    previous_secret      TEXT,
    previous_expires_at  TEXT,
    -- First failed attempt since the last success: an endpoint failing for long enough is disabled.
    failing_since        TEXT,
    created_at           TEXT NOT NULL,
    updated_at           TEXT NOT NULL
);
CREATE INDEX webhook_endpoints_merchant ON webhook_endpoints (merchant_id, status);

CREATE TABLE webhook_deliveries (
    id               TEXT PRIMARY KEY,
    endpoint_id      TEXT NOT NULL REFERENCES webhook_endpoints (id),
    merchant_id      TEXT NOT NULL REFERENCES merchants (id),
    event_id         TEXT NOT NULL REFERENCES events (id),
    event_type       TEXT NOT NULL,
    status           TEXT NOT NULL,                -- pending | succeeded | failed
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  TEXT,                         -- set while pending
    lease_until      TEXT,                         -- a worker is sending it until then
    final_attempt    INTEGER NOT NULL DEFAULT 0,   -- a manual retry: one attempt, no schedule
    last_status_code INTEGER,
    last_error       TEXT,
    last_attempt_at  TEXT,
    created_at       TEXT NOT NULL,
    updated_at       TEXT NOT NULL,
    UNIQUE (endpoint_id, event_id)
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (status, next_attempt_at);
CREATE INDEX webhook_deliveries_endpoint ON webhook_deliveries (endpoint_id, created_at, id);

CREATE TABLE webhook_attempts (
    id           TEXT PRIMARY KEY,
    delivery_id  TEXT NOT NULL REFERENCES webhook_deliveries (id),
    attempted_at TEXT NOT NULL,
    status_code  INTEGER,
    error        TEXT,
    duration_ms  INTEGER NOT NULL
);
CREATE INDEX webhook_attempts_delivery ON webhook_attempts (delivery_id, attempted_at);
