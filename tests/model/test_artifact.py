"""The artifact: written atomically with its manifest, verified before it is unpickled."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from interaction_recommender.model.arrays import FEATURE_NAMES, RecommenderModel
from interaction_recommender.model.artifact import (
    ArtifactError,
    load_artifact,
    manifest_path,
    restore_previous,
    save_artifact,
)
from interaction_recommender.model.labels import LabelWeights
from interaction_recommender.training.dataset import features_by_user
from interaction_recommender.training.fit import FitConfig, Params, fit_model
from tests.recs.world import planted_world


@pytest.fixture(scope="module")
def model() -> RecommenderModel:
    world = planted_world(users_per_cluster=20)
    features = features_by_user(world.events, {m.movie_id: m for m in world.catalog}.get)
    params = Params(20.0, None, {"ease": 1.0})
    return fit_model(features, world.catalog, params, LabelWeights(), FitConfig(), version="v1")


def test_a_good_artifact_round_trips_with_its_manifest(
    model: RecommenderModel, tmp_path: Path
) -> None:
    path = tmp_path / "models" / "recommender.pkl"

    manifest = save_artifact(model, path)
    loaded, read = load_artifact(path)

    assert read == orjson.loads(orjson.dumps(manifest, option=orjson.OPT_UTC_Z))
    assert read["version"] == "v1"
    assert read["featureSchema"]["names"] == list(FEATURE_NAMES)
    assert len(read["sha256"]) == 64
    assert {"numpy", "scipy", "joblib", "python"} <= set(read["libraries"])
    assert loaded.item_ids == model.item_ids
    assert (loaded.ease == model.ease).all()  # type: ignore[union-attr]


def test_a_truncated_file_is_refused(model: RecommenderModel, tmp_path: Path) -> None:
    path = tmp_path / "recommender.pkl"
    save_artifact(model, path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])

    with pytest.raises(ArtifactError, match="sha256"):
        load_artifact(path)


def test_a_file_that_does_not_match_its_manifest_is_refused(
    model: RecommenderModel, tmp_path: Path
) -> None:
    path = tmp_path / "recommender.pkl"
    save_artifact(model, path)
    manifest = orjson.loads(manifest_path(path).read_bytes())
    manifest["sha256"] = "0" * 64
    manifest_path(path).write_bytes(orjson.dumps(manifest))

    with pytest.raises(ArtifactError, match="sha256"):
        load_artifact(path)


def test_another_feature_schema_is_refused(model: RecommenderModel, tmp_path: Path) -> None:
    path = tmp_path / "recommender.pkl"
    save_artifact(model, path)
    manifest = orjson.loads(manifest_path(path).read_bytes())
    manifest["featureSchema"]["names"] = ["popularity", "something_else"]
    manifest_path(path).write_bytes(orjson.dumps(manifest))

    with pytest.raises(ArtifactError, match="schema"):
        load_artifact(path)


def test_a_missing_manifest_or_file_is_refused(model: RecommenderModel, tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match="manifest"):
        load_artifact(tmp_path / "nothing.pkl")
    path = tmp_path / "recommender.pkl"
    save_artifact(model, path)
    path.unlink()
    with pytest.raises(ArtifactError, match="missing"):
        load_artifact(path)


def test_the_previous_pair_is_kept_and_restored(model: RecommenderModel, tmp_path: Path) -> None:
    path = tmp_path / "recommender.pkl"
    save_artifact(model, path)
    model.version = "v2"
    save_artifact(model, path)

    assert load_artifact(path)[1]["version"] == "v2"
    restored = restore_previous(path)

    assert restored["version"] == "v1"
    assert load_artifact(path)[0].version == "v1"
    assert restore_previous(path)["version"] == "v2"  # and back again
