"""Test plugin `tally`."""
