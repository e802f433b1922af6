"""Recommendations: a trained model (model.py), the catalog seen through it (catalog_view.py) and
the pure engine (engine.py) that turns a user's features and a context into ranked movies with
reasons."""
