"""features assets."""
