"""Partner apps (API.md 10): registration by a developer merchant; OAuth installs build on it."""
