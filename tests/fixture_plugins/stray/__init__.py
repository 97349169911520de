"""Test plugin `stray`."""
