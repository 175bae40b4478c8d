-- Authorize now, capture later (docs/api.md 17). Sessions and links say how their payments are captured;
-- a payment keeps what was authorized, what was captured, and when each step happened. Order status
-- `authorized` and payment statuses `authorized` / `canceled` need no schema change (statuses are TEXT).
ALTER TABLE checkout_sessions ADD COLUMN capture TEXT NOT NULL DEFAULT 'automatic';
ALTER TABLE payment_links ADD COLUMN capture TEXT NOT NULL DEFAULT 'automatic';
ALTER TABLE payments ADD COLUMN capture_method TEXT NOT NULL DEFAULT 'automatic';
-- NULL for an automatic capture (authorized and captured at once: amount says it all).
ALTER TABLE payments ADD COLUMN amount_authorized BIGINT;
ALTER TABLE payments ADD COLUMN authorized_at TEXT;
ALTER TABLE payments ADD COLUMN captured_at TEXT;
ALTER TABLE payments ADD COLUMN canceled_at TEXT;
-- The claim on an authorization (capture | void | expire): set in the transaction that decides, under the
-- order's lock, before the processor is called; the first claim wins, the others are answered 409. A claim
-- whose process died is re-driven by the sweeper under the same payment id (the processor's idempotency key).
ALTER TABLE payments ADD COLUMN pending_action TEXT;
ALTER TABLE payments ADD COLUMN pending_amount BIGINT;
ALTER TABLE payments ADD COLUMN pending_since TEXT;
-- The invariant becomes: at most one authorized-or-succeeded payment per order.
DROP INDEX payments_one_success_per_order;
CREATE UNIQUE INDEX payments_one_success_per_order ON payments (order_id) WHERE status IN ('authorized', 'succeeded');
-- The sweeper's expiry and re-drive: authorizations by age.
CREATE INDEX payments_authorized ON payments (authorized_at) WHERE status = 'authorized';
