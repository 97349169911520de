"""Test plugin `baddep`."""
