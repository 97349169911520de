"""Supplies: donations in, a stock ledger, distributions out — nothing lost, nothing doubled."""
