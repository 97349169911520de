"""Test plugin `typo_role`."""
