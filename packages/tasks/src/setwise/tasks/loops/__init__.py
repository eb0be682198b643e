"""Training loops, one per backend, sharing :mod:`setwise.tasks.runs`."""
