"""The model store (model/store.py) on both databases: verified, immutable, idempotent versions;
names with a history; rollback; garbage collection."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from interaction_recommender.model.arrays import RecommenderModel
from interaction_recommender.model.bundle import BundleError, write_bundle
from interaction_recommender.model.signing import SigningKeys, generate_key
from interaction_recommender.model.store import CHAMPION, ModelStore, StoreError
from interaction_recommender.storage import Database, migrate
from tests.fixtures.app import backend_settings
from tests.fixtures.model import fit_sample_model

KEYS = SigningKeys.parse(generate_key())
START = datetime(2026, 12, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def base_model() -> RecommenderModel:
    return fit_sample_model()


def _bundle(model: RecommenderModel, day: int, keys: SigningKeys | None = KEYS) -> bytes:
    """A distinct version: its own name and training time."""
    return write_bundle(
        replace(model, version=f"v{day}", trained_at=START + timedelta(days=day)), keys
    )


@pytest.fixture(params=["sqlite", "postgres"])
async def store(
    request: pytest.FixtureRequest, tmp_path: Path, pg_schema: str
) -> AsyncIterator[ModelStore]:
    database = Database(backend_settings(tmp_path, request.param, pg_schema))
    await migrate(database)
    try:
        yield ModelStore(database, KEYS)
    finally:
        await database.dispose()


async def test_a_verified_bundle_becomes_the_champion_once(
    store: ModelStore, base_model: RecommenderModel
) -> None:
    bundle = _bundle(base_model, 1)

    first = await store.add(bundle, source="train")
    again = await store.add(bundle, source="import")  # the same bytes: nothing new

    assert (first.version, first.created, first.moved, first.previous) == ("v1", True, True, None)
    assert (again.version, again.created) == ("v1", False)
    assert [v.version for v in await store.versions()] == ["v1"]
    assert (await store.names())[CHAMPION].version == "v1"
    assert await store.bundle("v1") == bundle
    model, manifest = await store.load("v1")
    assert model.item_ids == base_model.item_ids and manifest["version"] == "v1"


async def test_unsigned_forged_or_conflicting_bundles_never_enter(
    store: ModelStore, base_model: RecommenderModel
) -> None:
    with pytest.raises(BundleError, match="not signed"):
        await store.add(_bundle(base_model, 1, keys=None), source="import")
    with pytest.raises(BundleError, match="does not verify"):
        await store.add(
            _bundle(base_model, 1, keys=SigningKeys.parse(generate_key())), source="import"
        )
    assert await store.versions() == [] and await store.names() == {}

    await store.add(_bundle(base_model, 1), source="train")
    other_content = write_bundle(replace(base_model, version="v1", calibration_lambda=0.5), KEYS)
    with pytest.raises(StoreError, match="other content"):
        await store.add(other_content, source="import")  # versions are immutable


async def test_an_import_moves_the_champion_only_when_newer(
    store: ModelStore, base_model: RecommenderModel
) -> None:
    await store.add(_bundle(base_model, 5), source="train")

    older = await store.add(_bundle(base_model, 2), source="import", only_if_newer=True)
    newer = await store.add(_bundle(base_model, 9), source="import", only_if_newer=True)

    assert (older.created, older.moved) == (True, False)  # kept, not served
    assert (newer.moved, newer.previous) == (True, "v5")
    assert (await store.names())[CHAMPION].version == "v9"


async def test_rollback_goes_back_one_move_or_to_any_kept_version(
    store: ModelStore, base_model: RecommenderModel
) -> None:
    with pytest.raises(StoreError, match="no model"):
        await store.rollback()
    for day in (1, 2, 3):
        await store.add(_bundle(base_model, day), source="train")

    assert await store.rollback() == ("v3", "v2")
    assert await store.rollback(to="v1") == ("v2", "v1")
    history = await store.history(CHAMPION)
    assert [(m["version"], m["reason"]) for m in history] == [
        ("v1", "rollback"),
        ("v2", "rollback"),
        ("v3", "train"),
        ("v2", "train"),
        ("v1", "train"),
    ]
    with pytest.raises(StoreError, match="no version"):
        await store.rollback(to="v404")


async def test_garbage_collection_keeps_named_in_use_and_recent_versions(
    store: ModelStore, base_model: RecommenderModel
) -> None:
    for day in range(1, 7):
        await store.add(_bundle(base_model, day), source="train")  # champion: v1 … v6
    await store.add(_bundle(base_model, 7), source="train", name="challenger")

    deleted = await store.collect_garbage(keep=2, in_use={"v1"})

    # v6 and v7 are named, v5 and v4 the champion's last two earlier versions, v1 in use
    assert sorted(deleted) == ["v2", "v3"]
    assert sorted(v.version for v in await store.versions()) == ["v1", "v4", "v5", "v6", "v7"]
    with pytest.raises(StoreError):
        await store.bundle("v2")
    assert await store.collect_garbage(keep=2, in_use={"v1"}) == []
