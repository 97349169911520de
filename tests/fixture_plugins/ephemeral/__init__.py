"""Test plugin `ephemeral`."""
