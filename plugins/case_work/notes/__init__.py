"""Casework progress notes (issue 14, item 3): dated and typed notes on a case, their text sealed at rest,
readable by the case's social worker, and by its supervisor and administrators (platform, organisation)
with a stated purpose; edits keep revisions, nothing is deleted (a note is voided with a reason)."""
