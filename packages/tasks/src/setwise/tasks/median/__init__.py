"""Median estimation (paper 1, section 5.1): data and task."""
