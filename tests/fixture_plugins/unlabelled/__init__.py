"""Test plugin `unlabelled`."""
