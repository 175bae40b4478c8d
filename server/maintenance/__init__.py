"""Operator tasks run from the command line, across domains (key rotation)."""
