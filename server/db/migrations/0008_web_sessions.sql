-- Merchant sign-in for people (the OAuth consent page needs one): server-side sessions behind a
-- random cookie stored only as its SHA-256 digest, and failed sign-ins for rate limiting.
CREATE TABLE web_sessions (
    id          TEXT PRIMARY KEY,
    merchant_id TEXT NOT NULL REFERENCES merchants (id),
    token_hash  TEXT NOT NULL UNIQUE,
    created_at  TEXT NOT NULL,
    expires_at  TEXT NOT NULL,
    revoked_at  TEXT
);
CREATE INDEX web_sessions_expiry ON web_sessions (expires_at);

-- One row per failed sign-in, keyed by "email:<address>" and by "ip:<address>".
CREATE TABLE login_failures (
    id           TEXT PRIMARY KEY,
    key          TEXT NOT NULL,
    failed_at    TEXT NOT NULL
);
CREATE INDEX login_failures_key ON login_failures (key, failed_at);
