"""monitoring assets."""
