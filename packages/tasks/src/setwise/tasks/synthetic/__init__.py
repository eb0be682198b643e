"""Synthetic molecule-like 3-D sets: the set VAE of paper 2 (section 5.3, Table 4) with four
set creators; task, data, model (both backends), metrics and results page."""
