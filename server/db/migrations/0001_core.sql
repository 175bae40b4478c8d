-- Flint core schema. Written for both SQLite and PostgreSQL: TEXT ids, BIGINT minor units,
-- RFC 3339 UTC timestamps as TEXT (they sort as text), JSON as TEXT, booleans as 0/1.

CREATE TABLE merchants (
    id              TEXT PRIMARY KEY,
    name            TEXT NOT NULL,
    email           TEXT NOT NULL UNIQUE,
    password_hash   TEXT NOT NULL,
    allowed_origins TEXT NOT NULL DEFAULT '[]',
    created_at      TEXT NOT NULL
);

-- Secret keys are stored as SHA-256 digests only; the key itself is shown once.
CREATE TABLE api_keys (
    id          TEXT PRIMARY KEY,
    merchant_id TEXT NOT NULL REFERENCES merchants (id),
    key_hash    TEXT NOT NULL UNIQUE,
    last4       TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    revoked_at  TEXT
);
CREATE INDEX api_keys_merchant ON api_keys (merchant_id, created_at);

CREATE TABLE orders (
    id                 TEXT PRIMARY KEY,
    merchant_id        TEXT NOT NULL REFERENCES merchants (id),
    status             TEXT NOT NULL,
    currency           TEXT NOT NULL,
    amount_total       BIGINT NOT NULL,
    amount_paid        BIGINT NOT NULL DEFAULT 0,
    amount_refunded    BIGINT NOT NULL DEFAULT 0,
    line_items         TEXT NOT NULL,
    customer_email     TEXT,
    reference          TEXT,
    metadata           TEXT NOT NULL DEFAULT '{}',
    extension_data     TEXT NOT NULL DEFAULT '{}',
    -- Last per-order event sequence number handed out (events are numbered 1, 2, 3, ...).
    event_seq          BIGINT NOT NULL DEFAULT 0,
    -- The order guard: the one payment attempt allowed to run, and when its lease ends.
    attempt_payment_id TEXT,
    attempt_expires_at TEXT,
    created_at         TEXT NOT NULL,
    updated_at         TEXT NOT NULL,
    CHECK (amount_refunded <= amount_paid),
    CHECK (amount_paid <= amount_total)
);
CREATE INDEX orders_merchant_created ON orders (merchant_id, created_at, id);

CREATE TABLE checkout_sessions (
    id                       TEXT PRIMARY KEY,
    merchant_id              TEXT NOT NULL REFERENCES merchants (id),
    order_id                 TEXT NOT NULL REFERENCES orders (id),
    mode                     TEXT NOT NULL,
    status                   TEXT NOT NULL,
    success_url              TEXT NOT NULL,
    cancel_url               TEXT,
    expires_at               TEXT NOT NULL,
    recovery_enabled         INTEGER NOT NULL DEFAULT 0,
    abandon_after            INTEGER NOT NULL DEFAULT 900,
    recovery_payment_link_id TEXT,
    created_at               TEXT NOT NULL,
    updated_at               TEXT NOT NULL
);
CREATE INDEX checkout_sessions_merchant_created ON checkout_sessions (merchant_id, created_at, id);
CREATE INDEX checkout_sessions_order ON checkout_sessions (order_id);

CREATE TABLE payments (
    id                    TEXT PRIMARY KEY,
    merchant_id           TEXT NOT NULL REFERENCES merchants (id),
    order_id              TEXT NOT NULL REFERENCES orders (id),
    checkout_session_id   TEXT,
    payment_link_id       TEXT,
    channel               TEXT NOT NULL,
    status                TEXT NOT NULL,
    amount                BIGINT NOT NULL,
    currency              TEXT NOT NULL,
    -- Only what PCI DSS lets us keep: brand, last four digits, expiry. Never PAN or CVC.
    card_brand            TEXT NOT NULL,
    card_last4            TEXT NOT NULL,
    card_exp_month        INTEGER NOT NULL,
    card_exp_year         INTEGER NOT NULL,
    failure_code          TEXT,
    failure_message       TEXT,
    processor_ref         TEXT,
    amount_refunded       BIGINT NOT NULL DEFAULT 0,
    -- Reserved by refunds whose processor call has not come back yet.
    amount_refund_pending BIGINT NOT NULL DEFAULT 0,
    created_at            TEXT NOT NULL,
    updated_at            TEXT NOT NULL,
    CHECK (amount_refunded + amount_refund_pending <= amount)
);
-- The last line of defence for "an order is paid at most once".
CREATE UNIQUE INDEX payments_one_success_per_order ON payments (order_id) WHERE status = 'succeeded';
CREATE INDEX payments_merchant_created ON payments (merchant_id, created_at, id);
CREATE INDEX payments_order ON payments (order_id, created_at);

CREATE TABLE refunds (
    id            TEXT PRIMARY KEY,
    merchant_id   TEXT NOT NULL REFERENCES merchants (id),
    payment_id    TEXT NOT NULL REFERENCES payments (id),
    order_id      TEXT NOT NULL REFERENCES orders (id),
    amount        BIGINT NOT NULL CHECK (amount > 0),
    currency      TEXT NOT NULL,
    status        TEXT NOT NULL,
    reason        TEXT,
    failure_code  TEXT,
    processor_ref TEXT,
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL
);
CREATE INDEX refunds_merchant_created ON refunds (merchant_id, created_at, id);
CREATE INDEX refunds_status ON refunds (status, updated_at);

-- The outbox: every state change writes its event in the same transaction.
CREATE TABLE events (
    id          TEXT PRIMARY KEY,
    merchant_id TEXT NOT NULL REFERENCES merchants (id),
    order_id    TEXT REFERENCES orders (id),
    sequence    BIGINT,
    type        TEXT NOT NULL,
    actor_type  TEXT NOT NULL,
    actor_id    TEXT,
    data        TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    UNIQUE (order_id, sequence)
);
CREATE INDEX events_merchant_created ON events (merchant_id, created_at, id);
