"""Durable storage: the engine, the tables, the migrations. SQL itself lives in each concern's
repository module, built per transaction."""

from interaction_recommender.storage.database import Database
from interaction_recommender.storage.migrate import head_revision, migrate

__all__ = ["Database", "head_revision", "migrate"]
