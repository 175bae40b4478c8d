-- Staff: people with a role on one merchant, who sign in at /login (docs/api.md 16). Emails are stored
-- lower-cased, so the unique index is case-insensitive; it covers live members only, so a removed
-- person can be invited again.
CREATE TABLE staff (
    id            TEXT PRIMARY KEY,
    merchant_id   TEXT NOT NULL REFERENCES merchants (id),
    email         TEXT NOT NULL,
    role          TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    removed_at    TEXT
);
CREATE UNIQUE INDEX staff_live_email ON staff (merchant_id, email) WHERE removed_at IS NULL;
CREATE INDEX staff_email ON staff (email, created_at);

-- Invitations to a merchant's team: the link's token is random, shown once and kept only as its
-- SHA-256 digest; single use (accepted_at), for seven days (expires_at).
CREATE TABLE staff_invitations (
    id          TEXT PRIMARY KEY,
    merchant_id TEXT NOT NULL REFERENCES merchants (id),
    email       TEXT NOT NULL,
    role        TEXT NOT NULL,
    token_hash  TEXT NOT NULL UNIQUE,
    invited_by  TEXT NOT NULL REFERENCES staff (id),
    created_at  TEXT NOT NULL,
    expires_at  TEXT NOT NULL,
    accepted_at TEXT,
    revoked_at  TEXT,
    staff_id    TEXT REFERENCES staff (id)
);
CREATE INDEX staff_invitations_merchant ON staff_invitations (merchant_id, email);

-- Every existing merchant's own email and password become its first owner. The id is derived from
-- the merchant's (both engines, no random function in SQL): stf_ and the merchant id's 22 characters.
INSERT INTO staff (id, merchant_id, email, role, password_hash, created_at, removed_at)
SELECT 'stf_' || substr(id, 5), id, lower(email), 'owner', password_hash, created_at, NULL FROM merchants;

-- Who a web session signs in (NULL for sessions from before staff: they are signed out).
ALTER TABLE web_sessions ADD COLUMN staff_id TEXT REFERENCES staff (id);
CREATE INDEX web_sessions_staff ON web_sessions (staff_id);
