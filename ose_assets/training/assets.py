"""training assets."""
