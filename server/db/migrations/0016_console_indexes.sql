-- The console's order filters (docs/api.md 16), each an index walked in the list's own order
-- (newest first, keyset on created_at, id), so a filtered page reads only the rows it shows.
-- By status: "paid orders", "open orders".
CREATE INDEX orders_merchant_status ON orders (merchant_id, status, created_at, id);
-- A buyer's email, matched case-insensitively: the expression is the one the search writes,
-- lower(customer_email), which SQLite (3.9+) and PostgreSQL both index.
CREATE INDEX orders_merchant_email ON orders (merchant_id, lower(customer_email), created_at, id);
-- The merchant's own reference, matched exactly.
CREATE INDEX orders_merchant_reference ON orders (merchant_id, reference, created_at, id);
