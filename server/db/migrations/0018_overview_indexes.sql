-- The console's Overview (docs/api.md 15): failed webhook deliveries per day of a merchant's period. Only
-- failing deliveries (given up, or retrying after a failed attempt) are in this partial index, so a count
-- over 90 days reads those rows and never the many delivered ones, and a delivery that succeeds at once
-- never writes to it. The query (webhooks/store.py count_failed_deliveries_by_day) repeats the condition
-- word for word: that is how SQLite and PostgreSQL both see that the index applies.
CREATE INDEX webhook_deliveries_failing ON webhook_deliveries (merchant_id, created_at)
    WHERE status = 'failed' OR (status = 'pending' AND attempts > 0);
