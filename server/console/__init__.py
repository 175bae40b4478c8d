"""The merchant console (docs/api.md 15): pages for the people who run a shop's payments, over the same
services as the API."""
