"""Dataset-card templates (Jinja), shipped as package data."""
