-- The checkout.before_payment hook (API.md 10): every call an app's hook answered (or failed to),
-- for the merchant to see (GET /v1/hook_calls?order=...).
CREATE TABLE hook_calls (
    id                  TEXT PRIMARY KEY,
    merchant_id         TEXT NOT NULL REFERENCES merchants (id),
    app_id              TEXT NOT NULL REFERENCES apps (id),
    installation_id     TEXT NOT NULL REFERENCES installations (id),
    order_id            TEXT NOT NULL REFERENCES orders (id),
    channel             TEXT NOT NULL,
    checkout_session_id TEXT,
    payment_link_id     TEXT,
    outcome             TEXT NOT NULL,  -- answered | timeout | error | invalid
    status_code         INTEGER,
    latency_ms          INTEGER NOT NULL,
    actions             TEXT NOT NULL,  -- JSON: the valid actions it answered
    ignored             TEXT NOT NULL,  -- JSON: what it answered that Flint ignores (other types, fields)
    applied             TEXT NOT NULL,  -- JSON: what Flint did with this call (block, annotate, route_to_hosted)
    error               TEXT,
    created_at          TEXT NOT NULL
);
CREATE INDEX hook_calls_order ON hook_calls (merchant_id, order_id, created_at, id);
CREATE INDEX hook_calls_merchant ON hook_calls (merchant_id, created_at, id);
