"""Example integrations of Flint, built only on its public HTTP API (see examples/shop/)."""
