"""Fitting and evaluation: the dataset from stored events, the fit and tuning, the holdout
metrics, scheduled retraining and the MovieLens-100K quality benchmark. Depends on model/ for
everything it shares with serving."""
