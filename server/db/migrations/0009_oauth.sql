-- Partner-app installs (API.md 10): OAuth 2.0 authorization codes with PKCE, grants (one refresh
-- token family each), the tokens of a grant, and installations (an app on a merchant).
CREATE TABLE installations (
    id             TEXT PRIMARY KEY,
    app_id         TEXT NOT NULL REFERENCES apps (id),
    merchant_id    TEXT NOT NULL REFERENCES merchants (id),
    scopes         TEXT NOT NULL,                  -- JSON list, what the merchant approved
    status         TEXT NOT NULL,                  -- active | uninstalled
    created_at     TEXT NOT NULL,
    updated_at     TEXT NOT NULL,
    uninstalled_at TEXT
);
-- At most one live installation of an app on a merchant; after an uninstall, a reinstall is new.
CREATE UNIQUE INDEX installations_one_active ON installations (app_id, merchant_id) WHERE status = 'active';
CREATE INDEX installations_merchant ON installations (merchant_id, created_at, id);

CREATE TABLE oauth_codes (
    code_hash      TEXT PRIMARY KEY,               -- SHA-256 of the code; the code itself is never stored
    app_id         TEXT NOT NULL REFERENCES apps (id),
    merchant_id    TEXT NOT NULL REFERENCES merchants (id),
    redirect_uri   TEXT NOT NULL,
    scopes         TEXT NOT NULL,
    code_challenge TEXT NOT NULL,                  -- PKCE S256 (RFC 7636)
    expires_at     TEXT NOT NULL,
    used_at        TEXT,
    grant_id       TEXT                            -- what the code issued, revoked if it is replayed
);

CREATE TABLE oauth_grants (
    id              TEXT PRIMARY KEY,
    installation_id TEXT NOT NULL REFERENCES installations (id),
    app_id          TEXT NOT NULL REFERENCES apps (id),
    merchant_id     TEXT NOT NULL REFERENCES merchants (id),
    scopes          TEXT NOT NULL,
    created_at      TEXT NOT NULL,
    revoked_at      TEXT
);
CREATE INDEX oauth_grants_installation ON oauth_grants (installation_id);

CREATE TABLE oauth_tokens (
    token_hash  TEXT PRIMARY KEY,                  -- SHA-256 of the token
    kind        TEXT NOT NULL,                     -- access | refresh
    grant_id    TEXT NOT NULL REFERENCES oauth_grants (id),
    expires_at  TEXT,
    used_at     TEXT,                              -- a refresh token is spent when rotated
    revoked_at  TEXT,
    created_at  TEXT NOT NULL
);
CREATE INDEX oauth_tokens_grant ON oauth_tokens (grant_id);
