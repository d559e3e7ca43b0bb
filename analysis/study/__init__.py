"""Declarative studies: a grid of models x training seeds at one budget, run step by step, resumable."""
