-- Buyer details and checkout fields (docs/api.md 14).
-- What a session or payment link asks the buyer for: `collect` (which built-in fields, off / optional /
-- required, the address modes, allowed shipping countries, the terms URL) and the merchant's own
-- `custom_fields` specs, both as JSON. NULL means the defaults of an integration older than this: an
-- optional email and name, nothing else.
ALTER TABLE checkout_sessions ADD COLUMN collect TEXT;
ALTER TABLE checkout_sessions ADD COLUMN custom_fields TEXT;
ALTER TABLE payment_links ADD COLUMN collect TEXT;
ALTER TABLE payment_links ADD COLUMN custom_fields TEXT;


-- What the buyer gave: `customer` ({email, name, phone, billing_address, shipping_address}) and the
-- merchant's custom fields ({key: value}); an app's own fields live in extension_data[app_id].fields.
-- Personal data: POST /v1/orders/{id}/redact erases these (and the copies in the order's events);
-- `redacted_at` records that it happened.
ALTER TABLE orders ADD COLUMN customer TEXT;
ALTER TABLE orders ADD COLUMN custom_fields TEXT NOT NULL DEFAULT '{}';
ALTER TABLE orders ADD COLUMN redacted_at TEXT;
