-- Hosted pages: one-time form tokens (a replayed form is refused, a double click charges once)
-- and the merchant's brand colour.
CREATE TABLE form_nonces (
    nonce       TEXT PRIMARY KEY,
    session_id  TEXT NOT NULL,
    used_at     TEXT NOT NULL,
    -- Where the first submission ended, so a replay can be sent there instead of charged again.
    outcome_url TEXT
);
CREATE INDEX form_nonces_used ON form_nonces (used_at);

ALTER TABLE merchants ADD COLUMN brand_color TEXT NOT NULL DEFAULT '#4f46e5';
