"""Assessment and service plan of a case: needs scored by domain, goals, actions, progress, scheduled reviews."""
