"""`recommender migrate` as production runs it: its own step, from the environment."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from interaction_recommender.storage import Database, head_revision
from interaction_recommender.storage.migrate import current_revision
from tests.fixtures.app import embedded_settings
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
