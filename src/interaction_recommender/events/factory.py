"""Chooses the event store for the database: asyncpg on Postgres, SQLAlchemy Core on SQLite."""

from __future__ import annotations

from interaction_recommender.events.store import EventStore
from interaction_recommender.events.store_postgres import PostgresEventStore
from interaction_recommender.events.store_sql import SqlEventStore
from interaction_recommender.settings import Settings
from interaction_recommender.storage.database import Database

__all__ = ["build_event_store"]


def build_event_store(database: Database, settings: Settings) -> EventStore:
    if database.dialect == "postgresql":
        return PostgresEventStore(database, acquire_timeout_s=settings.db_pool_timeout_s)
    return SqlEventStore(database)
