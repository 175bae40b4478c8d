"""Abuse limits on payment attempts (API.md 13): the rules, and the per-address count they keep."""
