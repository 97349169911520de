"""Casework (个案工作): cases from intake to closure along the stages of MZ/T 094-2017, with approvals and
an append-only history. A built-in plugin, registered exactly as a third-party one would be."""
