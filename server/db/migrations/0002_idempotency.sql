-- Idempotency-Key records (draft-ietf-httpapi-idempotency-key-header; Stripe semantics).
-- scope is "merchant:<id>" or "app:<id>" so one client never sees another's response.
CREATE TABLE idempotency_keys (
    scope            TEXT NOT NULL,
    idem_key         TEXT NOT NULL,
    request_hash     TEXT NOT NULL,
    state            TEXT NOT NULL,
    locked_until     TEXT,
    response_status  INTEGER,
    response_type    TEXT,
    response_body    TEXT,
    created_at       TEXT NOT NULL,
    PRIMARY KEY (scope, idem_key)
);
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);

-- The sweeper looks for open sessions past their expiry and orders with a lapsed guard.
CREATE INDEX checkout_sessions_open_expiry ON checkout_sessions (status, expires_at);
CREATE INDEX orders_attempt_lease ON orders (attempt_expires_at) WHERE attempt_payment_id IS NOT NULL;
