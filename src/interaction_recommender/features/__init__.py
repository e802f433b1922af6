"""Streaming user features: the state (state.py), the pure extraction (extractor.py), the storage
encoding (codec.py) and the served document (document.py); around them, the stores, the consumer
and the API."""
