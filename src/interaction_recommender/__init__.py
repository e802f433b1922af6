"""Cinemate interaction-recommender service.

The package reads as the pipeline: ``events`` (ingest) -> ``storage`` (durable raw events and
outbox) -> ``outbox`` (relay) -> ``bus`` (Kafka or in-process) -> later stages.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
