-- Payment links and drop-off recovery (API.md 7): a link pays its own order and nothing else; a
-- session with recovery enabled that the buyer leaves, idles past abandon_after, or lets expire gets
-- exactly one recovery link (the partial unique index below is the schema's own guarantee).
CREATE TABLE payment_links (
    id                  TEXT PRIMARY KEY,
    merchant_id         TEXT NOT NULL REFERENCES merchants (id),
    order_id            TEXT NOT NULL REFERENCES orders (id),
    source              TEXT NOT NULL,              -- manual | recovery | app
    checkout_session_id TEXT REFERENCES checkout_sessions (id),
    active              INTEGER NOT NULL,
    expires_at          TEXT,
    deactivated_at      TEXT,
    created_at          TEXT NOT NULL,
    updated_at          TEXT NOT NULL
);
CREATE INDEX payment_links_merchant ON payment_links (merchant_id, created_at, id);
CREATE INDEX payment_links_order ON payment_links (order_id);
CREATE UNIQUE INDEX payment_links_one_recovery_per_session ON payment_links (checkout_session_id)
    WHERE source = 'recovery';

-- When a watched session counts as abandoned for idleness (its last buyer activity + abandon_after);
-- NULL once it is not watched any more (recovery off, link made, order closed).
ALTER TABLE checkout_sessions ADD COLUMN abandon_at TEXT;
ALTER TABLE checkout_sessions ADD COLUMN dropped_off_at TEXT;
-- drop_off_reason: left | idle | expired
ALTER TABLE checkout_sessions ADD COLUMN drop_off_reason TEXT;
-- (status, abandon_at): with status first, SQLite's planner picks this partial index for the
-- sweeper's query by itself; on (abandon_at) alone it scanned every open session instead.
CREATE INDEX checkout_sessions_watched ON checkout_sessions (status, abandon_at)
    WHERE status = 'open' AND recovery_payment_link_id IS NULL AND abandon_at IS NOT NULL;
CREATE INDEX checkout_sessions_dropped_off ON checkout_sessions (merchant_id, dropped_off_at);
CREATE INDEX payments_link ON payments (payment_link_id) WHERE payment_link_id IS NOT NULL;
CREATE INDEX payments_session ON payments (checkout_session_id) WHERE checkout_session_id IS NOT NULL;
