"""Corruption suite: names, backends, corrupted datasets, materialisation and robustness metrics."""
