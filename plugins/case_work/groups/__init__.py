"""Group work (小组工作, MZ/T 095-2017): groups, their stages, participants, sessions, attendance, notes."""
