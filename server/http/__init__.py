"""HTTP plumbing every surface shares (the JSON API, buyer pages, merchant pages): who is calling,
body and query validation, CORS, Idempotency-Key, errors as problem+json or a page, the page renderer
and its security headers, the OpenAPI document. No business rule lives here."""
