"""Test plugin `offprefix`."""
