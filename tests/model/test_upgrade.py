"""`recommender model upgrade`, the deploy step before a release with newer feature semantics:
it leaves a current champion alone and trains one when the champion is older."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path

from interaction_recommender.model.arrays import FEATURE_SEMANTICS
from interaction_recommender.model.repository import ModelRepository
from interaction_recommender.storage import Database
from tests.fixtures.app import SIGNING_KEY, embedded_settings
from tests.fixtures.cli import succeeded
from tests.fixtures.services import pg_base_url


def _env(tmp_path: Path, pg_schema: str) -> dict[str, str]:
    return {
        **os.environ,
        "DATA_DIR": str(tmp_path / "var"),
        "DATABASE_URL": pg_base_url(),
        "DATABASE_SCHEMA": pg_schema,
        "AUTO_MIGRATE": "true",
        "MODEL_SIGNING_KEYS": SIGNING_KEY,
    }


async def _champion(tmp_path: Path, pg_schema: str) -> tuple[str, dict[str, object]]:
    settings = embedded_settings(tmp_path, database_url=pg_base_url(), database_schema=pg_schema)
    database = Database(settings)
    try:
        async with database.transaction() as conn:
            repository = ModelRepository(conn)
            version = (await repository.names())["champion"].version
            manifest = await repository.manifest(version)
    finally:
        await database.dispose()
    assert manifest is not None
    return version, manifest


async def test_a_current_model_is_left_alone(
    tmp_path: Path, sample_model: Path, pg_schema: str
) -> None:
    env = _env(tmp_path, pg_schema)
    await succeeded(env, "model", "import", str(sample_model))
    before, _ = await _champion(tmp_path, pg_schema)

    upgraded = await succeeded(env, "model", "upgrade")

    assert json.loads(upgraded.last_line) == {
        "status": "current",
        "featureSemantics": FEATURE_SEMANTICS,
    }
    assert (await _champion(tmp_path, pg_schema))[0] == before


async def test_an_older_model_is_replaced_by_one_trained_on_the_stored_events(
    tmp_path: Path, pg_schema: str
) -> None:
    env = _env(tmp_path, pg_schema)
    world = tmp_path / "world.jsonl"
    await succeeded(
        env, "demo", "generate", "--out", str(world), "--users", "300", "--movies", "80"
    )
    await succeeded(env, "migrate")
    await succeeded(env, "demo", "load", str(world))
    # the champion an earlier release stored: its feature semantics are older than this one's
    settings = embedded_settings(tmp_path, database_url=pg_base_url(), database_schema=pg_schema)
    database = Database(settings)
    now = datetime.now(UTC)
    try:
        async with database.transaction() as conn:
            repository = ModelRepository(conn)
            old = {"version": "old", "featureSemantics": FEATURE_SEMANTICS - 1}
            await repository.add_version(
                "old", b"older bundle", old, source="train", trained_for="champion", now=now
            )
            await repository.move_name("champion", "old", reason="train", now=now)
    finally:
        await database.dispose()

    await succeeded(env, "model", "upgrade")

    version, manifest = await _champion(tmp_path, pg_schema)
    assert version != "old"
    assert manifest["featureSemantics"] == FEATURE_SEMANTICS
    counts = manifest["counts"]
    assert isinstance(counts, dict) and counts["events"] > 0
