"""Migrations of a test plugin."""
