"""Artifacts of earlier releases (joblib + manifest, model/artifact.py): verified before they are
unpickled, and turned into signed bundles by `recommender model migrate` (tested on files the
earlier releases' own code wrote, tests/fixtures/legacy.py)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import orjson
import pytest

from interaction_recommender.model.arrays import FEATURE_NAMES
from interaction_recommender.model.artifact import ArtifactError, load_artifact, manifest_path
from interaction_recommender.model.repository import ModelRepository
from interaction_recommender.storage import Database
from tests.fixtures.app import SIGNING_KEY, embedded_settings
from tests.fixtures.cli import recommender, succeeded
from tests.fixtures.legacy import artifact_of_release

# Run by the v0.2.0 code: its sample model, written by its save_artifact (format 2).
_WRITE_V0_2 = """
import sys
from pathlib import Path
from tests.fixtures.model import train_sample_model
print(train_sample_model(Path(sys.argv[1])))
"""


@pytest.fixture(scope="module")
def release_artifact(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("v0.2.0")
    return Path(artifact_of_release("v0.2.0", root, _WRITE_V0_2))


@pytest.fixture
def artifact(release_artifact: Path, tmp_path: Path) -> Path:
    """A copy of the v0.2.0 artifact and its manifest this test may damage."""
    target = tmp_path / release_artifact.name
    shutil.copy(release_artifact, target)
    shutil.copy(manifest_path(release_artifact), manifest_path(target))
    return target


def test_an_artifact_of_v0_2_reads_after_its_checks(artifact: Path) -> None:
    model, manifest = load_artifact(artifact)

    assert manifest["format"] == 2 and manifest["featureSchema"]["names"] == list(FEATURE_NAMES)
    assert model.version == manifest["version"] == "test"


def test_a_truncated_file_is_refused(artifact: Path) -> None:
    data = artifact.read_bytes()
    artifact.write_bytes(data[: len(data) // 2])

    with pytest.raises(ArtifactError, match="sha256"):
        load_artifact(artifact)


def test_a_file_that_does_not_match_its_manifest_is_refused(artifact: Path) -> None:
    manifest = orjson.loads(manifest_path(artifact).read_bytes())
    manifest["sha256"] = "0" * 64
    manifest_path(artifact).write_bytes(orjson.dumps(manifest))

    with pytest.raises(ArtifactError, match="sha256"):
        load_artifact(artifact)


def test_another_feature_schema_is_refused(artifact: Path) -> None:
    manifest = orjson.loads(manifest_path(artifact).read_bytes())
    manifest["featureSchema"]["names"] = ["popularity", "something_else"]
    manifest_path(artifact).write_bytes(orjson.dumps(manifest))

    with pytest.raises(ArtifactError, match="schema"):
        load_artifact(artifact)


def test_a_missing_manifest_or_file_is_refused(artifact: Path, tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match="manifest"):
        load_artifact(tmp_path / "nothing.pkl")
    artifact.unlink()
    with pytest.raises(ArtifactError, match="missing"):
        load_artifact(artifact)


async def test_model_migrate_turns_a_v0_2_artifact_into_the_signed_champion(
    artifact: Path, tmp_path: Path
) -> None:
    env = {**os.environ, "DATA_DIR": str(tmp_path / "var"), "MODEL_SIGNING_KEYS": SIGNING_KEY}

    migrated = await succeeded(env, "model", "migrate", str(artifact))

    assert orjson.loads(migrated.last_line)["version"] == "test"
    database = Database(embedded_settings(tmp_path))
    try:
        async with database.transaction() as conn:
            repository = ModelRepository(conn)
            assert (await repository.names())["champion"].version == "test"
            manifest = await repository.manifest("test")
    finally:
        await database.dispose()
    assert manifest is not None and manifest["format"] == 3
    assert manifest["signature"]["algorithm"] == "HMAC-SHA256"


async def test_model_migrate_refuses_a_tampered_or_too_old_artifact(
    artifact: Path, tmp_path: Path
) -> None:
    env = {**os.environ, "DATA_DIR": str(tmp_path / "var"), "MODEL_SIGNING_KEYS": SIGNING_KEY}
    manifest = orjson.loads(manifest_path(artifact).read_bytes())
    manifest["featureSemantics"] = 1  # what v0.1.0 wrote: its ranker cannot score today's rows
    manifest_path(artifact).write_bytes(orjson.dumps(manifest))

    refused = await recommender(env, "model", "migrate", str(artifact))

    assert refused.returncode == 1
    assert "model upgrade" in refused.output
