"""Migrations run on both databases and are safe when two replicas start at once."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from interaction_recommender.storage import Database, head_revision, migrate
from interaction_recommender.storage.locks import MIGRATIONS_LOCK, try_session_lock
from interaction_recommender.storage.migrate import current_revision
from interaction_recommender.storage.tables import metadata
from tests.fixtures.app import backend_settings, embedded_settings
from tests.fixtures.services import pg_base_url


async def _tables(database: Database) -> set[str]:
    async with database.engine.connect() as conn:
        return set(await conn.run_sync(lambda c: inspect(c).get_table_names()))


async def test_two_concurrent_migrations_on_postgres(tmp_path: Path, pg_schema: str) -> None:
    settings = embedded_settings(tmp_path, database_url=pg_base_url(), database_schema=pg_schema)
    first, second = Database(settings), Database(settings)
    try:
        await asyncio.gather(migrate(first), migrate(second))
        assert await current_revision(first.engine) == head_revision()
        assert {"raw_events", "outbox", "alembic_version"} <= await _tables(first)
    finally:
        await first.dispose()
        await second.dispose()


async def test_migrations_on_sqlite_are_idempotent(tmp_path: Path) -> None:
    database = Database(embedded_settings(tmp_path))
    try:
        await migrate(database)
        await migrate(database)
        assert await current_revision(database.engine) == head_revision()
        assert {"raw_events", "outbox"} <= await _tables(database)
    finally:
        await database.dispose()


async def test_a_migration_waits_for_its_lock_past_the_statement_timeout(
    tmp_path: Path, pg_schema: str
) -> None:
    settings = embedded_settings(
        tmp_path,
        database_url=pg_base_url(),
        database_schema=pg_schema,
        db_statement_timeout_ms=300,
    )
    holder, migrating = Database(settings), Database(settings)
    try:
        async with try_session_lock(holder, MIGRATIONS_LOCK) as mine:
            assert mine  # another replica is migrating
            run = asyncio.create_task(migrate(migrating))
            await asyncio.sleep(1.5)  # five statement timeouts: the wait must not end
            assert not run.done()
        await asyncio.wait_for(run, 60)
        assert await current_revision(migrating.engine) == head_revision()
    finally:
        await holder.dispose()
        await migrating.dispose()


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_the_table_definitions_match_the_migrations(
    tmp_path: Path, pg_schema: str, backend: str
) -> None:
    """storage/tables.py (what repositories query) and the migrations (what creates the
    schema) describe the same tables, columns, keys and indexes."""
    database = Database(backend_settings(tmp_path, backend, pg_schema))
    try:
        await migrate(database)
        async with database.engine.connect() as conn:
            differences = await conn.run_sync(
                lambda c: compare_metadata(MigrationContext.configure(c), metadata)
            )
        assert differences == []
    finally:
        await database.dispose()
