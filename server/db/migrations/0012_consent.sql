-- Installations keep exactly what the merchant approved (API.md 12). An installation records what its
-- consent page showed: the scopes (the existing `scopes` column), the concrete event types, the hooks and
-- the checkout fields; an app's later widening waits in pending_update until the merchant approves it.
ALTER TABLE installations ADD COLUMN consented_webhook_events TEXT NOT NULL DEFAULT '[]';
ALTER TABLE installations ADD COLUMN consented_hooks TEXT NOT NULL DEFAULT '[]';
ALTER TABLE installations ADD COLUMN consented_checkout_fields TEXT NOT NULL DEFAULT '[]';
-- JSON {scopes, webhook_events, hooks, checkout_fields, requested_at}, or NULL: nothing waits.
ALTER TABLE installations ADD COLUMN pending_update TEXT;
-- Installations made before this migration consented to what their app's settings were then, and the
-- hooks it declared; their events are taken from the app endpoint's filters (webhook_events as filters:
-- server.apps.consent expands them into concrete types the next time the consent is read or changed).
UPDATE installations SET consented_hooks = (SELECT apps.hooks FROM apps WHERE apps.id = installations.app_id);
UPDATE installations SET consented_webhook_events = COALESCE(
    (SELECT e.events FROM webhook_endpoints e WHERE e.installation_id = installations.id AND e.status = 'enabled'),
    '[]');

-- What the consent page showed, carried from the authorization code to the installation it makes.
ALTER TABLE oauth_codes ADD COLUMN consent TEXT;

-- Checkout fields an app adds to every checkout of the merchants that install it (API.md 14).
ALTER TABLE apps ADD COLUMN checkout_fields TEXT NOT NULL DEFAULT '[]';

-- Who owns an endpoint: the merchant ('merchant'), an app's webhook_url for one installation ('app',
-- signed with the app's secret), or an app's own endpoint made with webhooks:write ('installation',
-- with a secret of its own, deleted when the app is uninstalled).
ALTER TABLE webhook_endpoints ADD COLUMN owner TEXT NOT NULL DEFAULT 'merchant';
UPDATE webhook_endpoints SET owner = 'app' WHERE app_id IS NOT NULL;
-- For an app's endpoints: the scopes its installation consents to, which decide what it may receive
-- (API.md 12). Kept in step by the installation (server/oauth) whenever its consent changes, so the
-- outbox decides a delivery from the endpoint row alone. NULL for the merchant's own endpoints.
ALTER TABLE webhook_endpoints ADD COLUMN installation_scopes TEXT;
UPDATE webhook_endpoints SET installation_scopes =
    (SELECT installations.scopes FROM installations WHERE installations.id = webhook_endpoints.installation_id)
    WHERE installation_id IS NOT NULL;

-- Every object names who created it (API.md 12): created_by {type, id}.
ALTER TABLE orders ADD COLUMN created_by_type TEXT;
ALTER TABLE orders ADD COLUMN created_by_id TEXT;
ALTER TABLE checkout_sessions ADD COLUMN created_by_type TEXT;
ALTER TABLE checkout_sessions ADD COLUMN created_by_id TEXT;
ALTER TABLE payment_links ADD COLUMN created_by_type TEXT;
ALTER TABLE payment_links ADD COLUMN created_by_id TEXT;
ALTER TABLE refunds ADD COLUMN created_by_type TEXT;
ALTER TABLE refunds ADD COLUMN created_by_id TEXT;
ALTER TABLE webhook_endpoints ADD COLUMN created_by_type TEXT;
ALTER TABLE webhook_endpoints ADD COLUMN created_by_id TEXT;
