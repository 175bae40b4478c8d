"""Flint: order-backed payments for installable checkout extensions."""
