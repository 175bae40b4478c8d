-- App-owned webhooks (API.md 10): each installation of an app with a webhook_url gets an endpoint
-- row on the installing merchant, owned by the app (never listed or changed by the merchant), so
-- its deliveries go through the same outbox and worker. 'retired' (after an uninstall) takes no new
-- events but still sends what was already due, app.uninstalled last.
ALTER TABLE webhook_endpoints ADD COLUMN app_id TEXT REFERENCES apps (id);
ALTER TABLE webhook_endpoints ADD COLUMN installation_id TEXT REFERENCES installations (id);
CREATE INDEX webhook_endpoints_installation ON webhook_endpoints (installation_id);
