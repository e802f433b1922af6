"""Retention deletes with a backlog: one run must finish however many rows expired, under the
statement timeout (issue 17, defect 3: a single unbounded DELETE timed out once the backlog was
large, and then every later run did too while the table grew)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import text

from interaction_recommender.bus.memory import MemoryBus
from interaction_recommender.feedback.impressions import ImpressionLog
from interaction_recommender.outbox import OutboxRelay
from interaction_recommender.storage import Database, migrate
from tests.fixtures.app import embedded_settings
from tests.fixtures.services import pg_base_url

BACKLOG = 600_000
TIMEOUT_MS = 100
"""A statement timeout one run's single DELETE of the whole backlog takes longer than."""


@pytest.fixture
async def database(tmp_path: Path, pg_schema: str) -> AsyncIterator[Database]:
    settings = embedded_settings(
        tmp_path,
        database_url=pg_base_url(),
        database_schema=pg_schema,
        db_statement_timeout_ms=TIMEOUT_MS,
    )
    database = Database(settings)
    await migrate(database)
    try:
        yield database
    finally:
        await database.dispose()


async def _fill(database: Database, statement: str) -> None:
    """Insert the backlog without the statement timeouts (a bulk load, not what is tested)."""
    engine = database.migration_engine()
    try:
        async with engine.begin() as conn:
            await conn.execute(text(statement), {"n": BACKLOG})
    finally:
        await engine.dispose()


async def _count(database: Database, table: str) -> int:
    async with database.transaction() as conn:
        return int((await conn.execute(text(f"SELECT count(*) FROM {table}"))).scalar_one())


async def test_the_outbox_retention_deletes_a_large_backlog(database: Database) -> None:
    await _fill(
        database,
        "INSERT INTO outbox (topic, message_key, payload, created_at, sent_at) "
        "SELECT 't', i::text, 'x', now() - interval '3 days', now() - interval '2 days' "
        "FROM generate_series(1, :n) AS i",
    )
    relay = OutboxRelay(
        database,
        MemoryBus(),
        batch_size=100,
        idle_poll_s=10,
        linger_s=0,
        max_backoff_s=1,
        retention_s=86_400,
    )

    deleted = await relay.delete_old_sent_rows()

    assert deleted == BACKLOG
    assert await _count(database, "outbox") == 0


async def test_the_feedback_log_retention_deletes_a_large_backlog(database: Database) -> None:
    await _fill(
        database,
        "INSERT INTO impressions (recommendation_id, user_id, context, policy, model_version, "
        "cached, items, shown_at) SELECT md5(i::text)::uuid, md5(i::text)::uuid, 'home', 'home', "
        "'v', false, '[]', now() - interval '400 days' FROM generate_series(1, :n) AS i",
    )
    log = ImpressionLog(database, capacity=10, batch=10, flush_s=1, retention_days=30)

    removed = await log.prune()

    assert removed == BACKLOG
    assert await _count(database, "impressions") == 0
