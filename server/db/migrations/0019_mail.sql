-- Email to buyers (docs/api.md 16): the mail outbox. A row is written in the same transaction as its cause
-- (an order paid, a drop-off's recovery link, a merchant's send) and sent by the mail worker
-- (flint/background/mail_worker.py) with no transaction open; `cause` is the exactly-once key (one mail per
-- receipt:<order>, recovery:<payment link>, send:<id>), `message_id` the RFC 5322 Message-ID fixed here, so a
-- resend after a crash carries the same one. `context` is the JSON the mail shows, frozen at the cause
-- (never a card number or CVC). status: pending | sending (claimed under lease_until) | sent | failed |
-- suppressed (the buyer unsubscribed while it waited).
CREATE TABLE emails (
    id              TEXT PRIMARY KEY,
    merchant_id     TEXT NOT NULL REFERENCES merchants (id),
    order_id        TEXT REFERENCES orders (id),
    payment_link_id TEXT REFERENCES payment_links (id),
    kind            TEXT NOT NULL,
    to_address      TEXT NOT NULL,
    locale          TEXT NOT NULL,
    cause           TEXT NOT NULL UNIQUE,
    context         TEXT NOT NULL,
    message_id      TEXT NOT NULL,
    status          TEXT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    last_error      TEXT,
    next_attempt_at TEXT,
    lease_until     TEXT,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL,
    sent_at         TEXT
);
-- The worker's claim: due pending rows by time, and the few sending rows whose lease lapsed.
CREATE INDEX emails_due ON emails (status, next_attempt_at);
-- GET /v1/emails (newest first, keyset on created_at, id) for a merchant, and for one order of it.
CREATE INDEX emails_merchant ON emails (merchant_id, created_at, id);
CREATE INDEX emails_order ON emails (merchant_id, order_id, created_at, id);

-- One-click unsubscribe (RFC 8058): no more recovery emails from this merchant to this address (lower-cased).
CREATE TABLE mail_suppressions (
    merchant_id TEXT NOT NULL REFERENCES merchants (id),
    address     TEXT NOT NULL,
    kind        TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    PRIMARY KEY (merchant_id, address, kind)
);

-- The merchant's setting: a receipt to the buyer when an order is paid (off until the merchant turns it on).
ALTER TABLE merchants ADD COLUMN receipts INTEGER NOT NULL DEFAULT 0;
-- A session created with recovery: {enabled: true, email: true}: its drop-off's recovery link is mailed.
ALTER TABLE checkout_sessions ADD COLUMN recovery_email INTEGER NOT NULL DEFAULT 0;
-- The buyer's language as the buyer's page negotiated it (en | de | fr), for the recovery email; NULL: not known.
ALTER TABLE checkout_sessions ADD COLUMN locale TEXT;
