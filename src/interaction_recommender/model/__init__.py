"""What serving and training share: the trained arrays and their feature row (arrays.py), the
labels (labels.py), the catalog seen through a model (catalog_view.py), contexts, the pure engine
(engine.py) with its reasons, and the artifact format (artifact.py, read through unpickler.py).
Imports neither serving (recs/) nor training (training/)."""
