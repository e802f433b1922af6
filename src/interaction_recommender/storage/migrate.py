"""Alembic, driven from code so that `recommender migrate` works from an installed package.

On Postgres a session advisory lock serialises concurrent runs: when two replicas start at once,
the second waits, then finds the schema at head and does nothing. The run has no statement
timeout (the service's 5 s one would end a wait for that lock, or a long migration, half way).
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, text
from sqlalchemy.ext.asyncio import AsyncEngine

from interaction_recommender.storage.database import Database
from interaction_recommender.storage.locks import MIGRATIONS_LOCK

__all__ = ["current_revision", "head_revision", "migrate"]


def _config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    return config


@cache
def head_revision() -> str:
    head = ScriptDirectory.from_config(_config()).get_current_head()
    assert head is not None
    return head


async def migrate(database: Database) -> None:
    engine = database.migration_engine()
    try:
        async with engine.connect() as conn:
            await conn.run_sync(_upgrade)
            await conn.commit()
    finally:
        if engine is not database.engine:
            await engine.dispose()


async def current_revision(engine: AsyncEngine) -> str | None:
    async with engine.connect() as conn:
        return await conn.run_sync(
            lambda sync_conn: MigrationContext.configure(sync_conn).get_current_revision()
        )


def _upgrade(connection: Connection) -> None:
    postgres = connection.dialect.name == "postgresql"
    if postgres:
        connection.execute(text("SELECT pg_advisory_lock(:ns, :key)"), _lock_params())
        connection.commit()
    try:
        config = _config()
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
    finally:
        if postgres:
            connection.execute(text("SELECT pg_advisory_unlock(:ns, :key)"), _lock_params())


def _lock_params() -> dict[str, int]:
    return {"ns": MIGRATIONS_LOCK[0], "key": MIGRATIONS_LOCK[1]}
