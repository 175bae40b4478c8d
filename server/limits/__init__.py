"""Abuse limits on payment attempts (docs/api.md 13): the rules, and the per-address count they keep."""
