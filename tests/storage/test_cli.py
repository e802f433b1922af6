"""`recommender migrate` as production runs it: its own step, from the environment."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from interaction_recommender.storage import Database, head_revision
from interaction_recommender.storage.locks import TRAINER_LOCK, try_session_lock
from interaction_recommender.storage.migrate import current_revision
from tests.fixtures.app import embedded_settings
from tests.fixtures.cli import recommender
from tests.fixtures.services import pg_base_url


async def test_migrate_command_brings_postgres_to_head(tmp_path: Path, pg_schema: str) -> None:
    env = {**os.environ, "DATABASE_URL": pg_base_url(), "DATABASE_SCHEMA": pg_schema}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "interaction_recommender.cli",
        "migrate",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), 60)

    assert process.returncode == 0, output.decode()
    database = Database(
        embedded_settings(tmp_path, database_url=pg_base_url(), database_schema=pg_schema)
    )
    try:
        assert await current_revision(database.engine) == head_revision()
    finally:
        await database.dispose()


async def test_migrate_command_runs_while_a_trainer_holds_its_lock_and_train_waits(
    tmp_path: Path, pg_schema: str
) -> None:
    settings = embedded_settings(tmp_path, database_url=pg_base_url(), database_schema=pg_schema)
    env = {
        **os.environ,
        "DATABASE_URL": pg_base_url(),
        "DATABASE_SCHEMA": pg_schema,
        "DATA_DIR": str(tmp_path / "var"),
    }
    trainer = Database(settings)
    try:
        async with try_session_lock(trainer, TRAINER_LOCK) as mine:
            assert mine  # a training round holds the trainer lock (minutes, in production)
            migrated = await recommender(env, "migrate")
            assert migrated.returncode == 0, migrated.output
            # a second trainer waits for the lock, then gives up: exit code 75, nothing trained
            refused = await recommender(env, "train", "--lock-wait-s", "1")
            assert refused.returncode == 75, refused.output
            assert "trainer lock" in refused.output
        assert await current_revision(trainer.engine) == head_revision()
        assert not (tmp_path / "var" / "models").exists()
    finally:
        await trainer.dispose()
