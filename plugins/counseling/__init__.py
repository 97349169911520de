"""Counseling: counselors, clients, sessions on the shared calendar, 14-day mental-health journals, risk
follow-up. A built-in plugin, registered exactly as a third-party one would be."""
