"""Test plugin `help`."""
