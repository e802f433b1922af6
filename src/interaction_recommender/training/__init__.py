"""Offline training and evaluation: the MovieLens-100K quality benchmark and its baselines."""
