"""Visits of the casework plugin: home visits and calls of a case, booked on core's shared calendar, and the
caseload view of a social worker (open cases, counts, the next due items of every kind)."""
