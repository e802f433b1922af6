"""The model store's SQL (model/repository.py) and the signing keys (model/keys.py), on both
databases."""

from __future__ import annotations

import asyncio
import hashlib
import os
import stat
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy.exc import IntegrityError

from interaction_recommender.model.keys import KEY_FILE, ensure_stored_key, signing_keys
from interaction_recommender.model.repository import CHUNK_BYTES, ModelRepository
from interaction_recommender.model.signing import SigningKeys, generate_key
from interaction_recommender.settings import Settings
from interaction_recommender.storage import Database, migrate
from tests.fixtures.app import backend_settings, embedded_settings

NOW = datetime(2026, 12, 7, tzinfo=UTC)


def _settings(tmp_path: Path, backend: str, schema: str, **overrides: object) -> Settings:
    """No MODEL_SIGNING_KEYS unless given: these tests are about where keys come from."""
    return backend_settings(tmp_path, backend, schema, **{"model_signing_keys": [], **overrides})


@pytest.fixture(params=["sqlite", "postgres"])
async def database(
    request: pytest.FixtureRequest, tmp_path: Path, pg_schema: str
) -> AsyncIterator[Database]:
    database = Database(_settings(tmp_path, request.param, pg_schema))
    await migrate(database)
    try:
        yield database
    finally:
        await database.dispose()


async def test_a_version_round_trips_through_chunks(database: Database) -> None:
    bundle = os.urandom(2 * CHUNK_BYTES + 12_345)  # three chunks, the last one short
    async with database.transaction() as conn:
        await ModelRepository(conn).add_version(
            "v1", bundle, {"version": "v1"}, source="train", trained_for="champion", now=NOW
        )
    async with database.transaction() as conn:
        repository = ModelRepository(conn)
        read = b"".join([chunk async for chunk in repository.bundle_chunks("v1")])
        (listed,) = await repository.versions()
        assert await repository.version_by_content(hashlib.sha256(bundle).hexdigest()) == "v1"
    assert read == bundle
    assert (listed.version, listed.size_bytes, listed.trained_for) == (
        "v1",
        len(bundle),
        "champion",
    )


async def test_a_version_is_immutable_and_stored_once_by_content(database: Database) -> None:
    async with database.transaction() as conn:
        await ModelRepository(conn).add_version(
            "v1", b"bundle", {}, source="train", trained_for=None, now=NOW
        )
    for version, content in (("v1", b"other"), ("v2", b"bundle")):
        with pytest.raises(IntegrityError):
            async with database.transaction() as conn:
                await ModelRepository(conn).add_version(
                    version, content, {}, source="import", trained_for=None, now=NOW
                )


async def test_names_move_with_a_history_and_keep_their_versions(database: Database) -> None:
    async with database.transaction() as conn:
        repository = ModelRepository(conn)
        for version in ("v1", "v2", "v3"):
            await repository.add_version(
                version, version.encode(), {}, source="train", trained_for=None, now=NOW
            )
        assert (
            await repository.move_name(
                "champion", "v1", reason="train", now=NOW, training_config={"labels": {}}
            )
            is None
        )
        assert await repository.move_name("champion", "v2", reason="train", now=NOW) == "v1"
        assert await repository.move_name("champion", "v1", reason="rollback", now=NOW) == "v2"
        names = await repository.names()
        moves = await repository.moves("champion")
    assert names["champion"].version == "v1"
    assert names["champion"].training_config == {"labels": {}}  # kept across moves
    assert [(m["version"], m["previous_version"], m["reason"]) for m in moves] == [
        ("v1", "v2", "rollback"),
        ("v2", "v1", "train"),
        ("v1", None, "train"),
    ]
    # a named version cannot be deleted; an unnamed one goes with its chunks
    with pytest.raises(IntegrityError):
        async with database.transaction() as conn:
            await ModelRepository(conn).delete_versions(["v1"])
    async with database.transaction() as conn:
        repository = ModelRepository(conn)
        assert await repository.delete_versions(["v2", "v3"]) == 2
        assert [v.version for v in await repository.versions()] == ["v1"]
        with pytest.raises(KeyError):
            _ = [chunk async for chunk in repository.bundle_chunks("v2")]


async def test_the_environment_keys_win(tmp_path: Path, pg_schema: str) -> None:
    first, second = generate_key(), generate_key()
    settings = _settings(tmp_path, "sqlite", pg_schema, model_signing_keys=f"{first},{second}")
    database = Database(settings)
    try:
        assert await signing_keys(settings, database) == SigningKeys((first, second))
        assert not (settings.data_dir / KEY_FILE).exists()
    finally:
        await database.dispose()


async def test_the_embedded_mode_generates_one_private_key_file(tmp_path: Path) -> None:
    settings = embedded_settings(tmp_path, model_signing_keys=[])
    database = Database(settings)
    try:
        first = await signing_keys(settings, database)
        again = await signing_keys(settings, database)
    finally:
        await database.dispose()
    assert first is not None and first == again
    mode = stat.S_IMODE((settings.data_dir / KEY_FILE).stat().st_mode)
    assert mode == 0o600


async def test_migrate_stores_one_key_that_every_host_shares(
    tmp_path: Path, pg_schema: str
) -> None:
    hosts = [Database(_settings(tmp_path / f"host{i}", "postgres", pg_schema)) for i in range(3)]
    settings = [_settings(tmp_path / f"host{i}", "postgres", pg_schema) for i in range(3)]
    try:
        await migrate(hosts[0])
        assert await signing_keys(settings[0], hosts[0]) is None  # no key until migrate stores it
        # three replicas run `recommender migrate` at once: one key wins
        await asyncio.gather(
            *(ensure_stored_key(s, d) for s, d in zip(settings, hosts, strict=True))
        )
        keys = [await signing_keys(s, d) for s, d in zip(settings, hosts, strict=True)]
    finally:
        for database in hosts:
            await database.dispose()
    assert keys[0] is not None and keys[0] == keys[1] == keys[2]
    assert not any((tmp_path / f"host{i}" / "var" / KEY_FILE).exists() for i in range(3))
