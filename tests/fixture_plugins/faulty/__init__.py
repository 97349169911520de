"""Test plugin `faulty`."""
