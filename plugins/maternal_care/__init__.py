"""Maternal care: expectant mothers, pregnancies, lectures with waitlists, follow-ups of the national schedule."""
