"""Urgent needs of mothers and infants (formula for a baby in an isolation ward, medicine for a pregnant woman):
each becomes a core help request through core's public service, linked to the mother here (migration m004)."""
