-- Paying an order completes its open sessions (checkout/store.py select_open_sessions_of_order:
-- `WHERE order_id = ? AND status = 'open'`). Without statistics (Flint never runs ANALYZE) SQLite's
-- planner took checkout_sessions_open_expiry (status, expires_at) for it, since it matches one more
-- term than checkout_sessions_order (order_id): every paid confirm then read every open session of
-- every merchant, a cost that grew with abandoned carts (found profiling issue 19's write path).
-- This index matches both terms, so both engines take it; it also serves every lookup by order alone,
-- so the old one goes.
CREATE INDEX checkout_sessions_order_status ON checkout_sessions (order_id, status);
DROP INDEX checkout_sessions_order;
