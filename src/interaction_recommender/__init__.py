"""Cinemate interaction-recommender service.

The package reads as the pipeline: ``events`` (ingest) -> ``storage`` (durable raw events and
outbox) -> ``outbox`` (relay) -> ``bus`` (Kafka or in-process) -> ``features`` -> ``model``
(shared by ``recs``, serving, and ``training``) -> ``feedback``. docs/architecture.md has the
map and the rules of what may import what.
"""

__version__ = "0.2.0.dev0"

__all__ = ["__version__"]
