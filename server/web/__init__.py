"""Merchant-facing pages that are not the API: sign-in (/login, /logout, /account) and the OAuth 2.0
authorization server's pages and endpoints that partner apps install through."""
