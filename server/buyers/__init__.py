"""Buyer details and checkout fields (docs/api.md 14): what a checkout asks the buyer for and checking what
the buyer gave. Pure: no database, no HTTP (service, form and address over models and texts)."""
