"""Assessment and service plan of a case: needs scored by domain, goals, actions, progress, scheduled reviews."""

from plugins.case_work.plans import due as _due

# Reviews and actions join the caseload's due items (visits/caseload.py's registry) when the slice loads.
_due.register()
