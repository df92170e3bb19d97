"""scoring assets."""
