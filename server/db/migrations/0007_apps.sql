-- Partner apps (API.md 10): registered by a merchant (the developer) with a merchant key. OAuth
-- grants and installations come in later migrations.
CREATE TABLE apps (
    id                                  TEXT PRIMARY KEY,
    developer_merchant_id               TEXT NOT NULL REFERENCES merchants (id),
    name                                TEXT NOT NULL,
    description                         TEXT,
    -- The OAuth client (RFC 6749 2.2, 2.3.1): a public id, and the SHA-256 digest of the secret
    -- (security.hash_secret), never the secret itself.
    client_id                           TEXT NOT NULL UNIQUE,
    client_secret_hash                  TEXT NOT NULL,
    -- Signing secret of the app's webhooks and hook calls: Flint must sign with it, so it is
    -- encrypted at rest (security.SecretBox), not hashed; the previous one keeps signing beside
    -- the new one until previous_webhook_secret_expires_at (rotation overlap).
    webhook_secret                      TEXT NOT NULL,
    previous_webhook_secret             TEXT,
    previous_webhook_secret_expires_at  TEXT,
    redirect_uris                       TEXT NOT NULL,  -- JSON list, exactly as registered
    scopes                              TEXT NOT NULL,  -- JSON list, in server.api.auth.SCOPES order
    webhook_url                         TEXT,
    webhook_events                      TEXT NOT NULL,  -- JSON list: types, "prefix.*" or "*"
    hook_url                            TEXT,
    hooks                               TEXT NOT NULL,  -- JSON list: "checkout.before_payment"
    hook_failure_mode                   TEXT NOT NULL,  -- allow | block
    created_at                          TEXT NOT NULL,
    updated_at                          TEXT NOT NULL
);
CREATE INDEX apps_developer ON apps (developer_merchant_id, created_at, id);
