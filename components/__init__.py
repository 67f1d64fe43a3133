"""recgen library: pure functions and torch modules (no Ray imports)."""
