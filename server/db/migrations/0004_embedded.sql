-- Embedded checkout: what the widget tells Flint about a session.
-- fallback_*: the widget gave up on its card frame and sent the buyer to the hosted page
--   (recorded once per session, announced as checkout.session.fallback_used).
-- buyer_left_at: the buyer typed in the card form and left the page without paying (the
--   loader's beacon); drop-off recovery reads it.
ALTER TABLE checkout_sessions ADD COLUMN fallback_reason TEXT;
ALTER TABLE checkout_sessions ADD COLUMN fallback_at TEXT;
ALTER TABLE checkout_sessions ADD COLUMN buyer_left_at TEXT;
