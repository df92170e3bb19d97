"""model assets."""
