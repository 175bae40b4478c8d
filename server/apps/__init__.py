"""Partner apps (docs/api.md 10): registration by a developer merchant; OAuth installs build on it."""
