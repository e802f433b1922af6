"""The restricted unpickler: artifacts written before the model moved to model/ still load, and a
pickle that names anything outside the allow-list is refused."""

from __future__ import annotations

import hashlib
import importlib
import os
import pickle
import uuid
import zlib
from datetime import UTC, datetime
from pathlib import Path

import joblib
import numpy as np
import orjson
import pytest

from interaction_recommender.model.arrays import (
    FEATURE_NAMES,
    FEATURE_SEMANTICS,
    LinearRanker,
    RecommenderModel,
)
from interaction_recommender.model.artifact import (
    ARTIFACT_FORMAT,
    ArtifactError,
    load_artifact,
    manifest_path,
)
from interaction_recommender.model.catalog_view import build_catalog_view
from interaction_recommender.model.context import Context
from interaction_recommender.model.engine import recommend
from interaction_recommender.model.labels import LabelWeights
from interaction_recommender.model.signing import SigningKeys, generate_key
from interaction_recommender.model.unpickler import ALIASES, ForbiddenGlobal, load_joblib, loads
from tests.fixtures.legacy import artifact_of_release
from tests.recs.world import planted_world

# Run by the v0.1.0 code: its own sample model (version "legacy-current").
_WRITE_WITH_THE_OLD_CODE = """
import sys
from pathlib import Path
import joblib
from interaction_recommender.training.artifact import save_artifact
from tests.fixtures.model import train_sample_model
path = train_sample_model(Path(sys.argv[1]))
model = joblib.load(path)
model.version = "legacy-current"
save_artifact(model, path)
print(type(model).__module__)
"""


@pytest.fixture(scope="module")
def legacy_artifact(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An artifact written by the code of the tagged v0.1.0 release (tests/fixtures/legacy.py)."""
    root = tmp_path_factory.mktemp("legacy")
    printed = artifact_of_release("v0.1.0", root, _WRITE_WITH_THE_OLD_CODE)
    # The old code really wrote the old class path (else this test would prove nothing).
    assert printed == "interaction_recommender.recs.model"
    return root / "models" / "recommender.pkl"


def test_an_artifact_of_the_previous_release_unpickles_into_the_moved_classes(
    legacy_artifact: Path,
) -> None:
    assert b"interaction_recommender.recs.model" in joblib_stream(legacy_artifact)

    model = load_joblib(legacy_artifact)

    assert isinstance(model, RecommenderModel)
    assert isinstance(model.ranker, LinearRanker)
    assert isinstance(model.labels, LabelWeights)
    assert model.version == "legacy-current"
    assert model.feature_semantics == 1  # the class default: the field did not exist then


def test_an_artifact_of_the_previous_release_is_never_scored(legacy_artifact: Path) -> None:
    """Its ranker was tuned on rows standardised per request (feature semantics 1): the
    registry refuses it, with the command that trains a current one."""
    with pytest.raises(ArtifactError, match="model upgrade"):
        load_artifact(legacy_artifact)


def joblib_stream(path: Path) -> bytes:
    """The decompressed pickle stream of a joblib file (to look at the class paths it names)."""
    return zlib.decompress(path.read_bytes())


class _Ranker:
    """A stand-in for a bring-your-own ranker class of a trusted package."""

    def predict_proba(self, rows: np.ndarray) -> np.ndarray:
        return np.full((len(rows), 2), 0.5)


def test_a_pickle_that_names_a_function_outside_the_allow_list_is_refused() -> None:
    with pytest.raises(ForbiddenGlobal, match="system"):
        loads(pickle.dumps(os.system))
    with pytest.raises(ForbiddenGlobal, match="eval"):
        loads(pickle.dumps(eval))


def test_an_artifact_whose_pickle_names_a_forbidden_global_is_refused(tmp_path: Path) -> None:
    """The sha256 matches the manifest (anyone who can write the folder can write both), yet
    the file is refused before anything it names is called."""
    path = tmp_path / "recommender.pkl"
    joblib.dump({"payload": os.system}, path, compress=3)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    manifest = {
        "format": ARTIFACT_FORMAT,
        "version": "evil",
        "featureSchema": {"names": list(FEATURE_NAMES)},
        "featureSemantics": FEATURE_SEMANTICS,
        "sha256": digest,
    }
    manifest_path(path).write_bytes(orjson.dumps(manifest))

    with pytest.raises(ArtifactError, match="refused"):
        load_artifact(path)


def test_trusted_packages_allow_their_own_classes_only() -> None:
    ranker = pickle.dumps(_Ranker())
    prefix = (_Ranker.__module__.rsplit(".", 1)[0] + ".",)

    assert isinstance(loads(ranker, trusted_prefixes=prefix), _Ranker)
    with pytest.raises(ForbiddenGlobal):
        loads(ranker)  # not trusted
    # A function of a trusted package is refused, and so is a class it only re-exports
    # (this module imports Path from pathlib).
    with pytest.raises(ForbiddenGlobal):
        loads(pickle.dumps(joblib_stream), trusted_prefixes=prefix)
    forged = pickle.dumps(Path, protocol=0).replace(b"pathlib", _Ranker.__module__.encode())
    with pytest.raises(ForbiddenGlobal):
        loads(forged, trusted_prefixes=prefix)


@pytest.mark.parametrize(("old", "new"), list(ALIASES.items()))
def test_every_moved_class_path_resolves_to_its_new_home(
    old: tuple[str, str], new: tuple[str, str]
) -> None:
    cls = getattr(importlib.import_module(new[0]), new[1])
    stream = pickle.dumps(cls, protocol=0).replace(new[0].encode(), old[0].encode())
    assert f"c{old[0]}\n{old[1]}".encode() in stream

    assert loads(stream) is cls


def test_plain_values_and_arrays_load_through_the_allow_list(tmp_path: Path) -> None:
    path = tmp_path / "values.pkl"
    joblib.dump(
        {"when": datetime.now(UTC), "weights": LabelWeights(), "array": np.arange(3)},
        path,
        compress=3,
    )
    loaded = load_joblib(path)
    assert loaded["weights"] == LabelWeights()
    assert loaded["array"].tolist() == [0, 1, 2]


def test_movie_ids_read_from_postgres_load() -> None:
    """Artifacts trained on events read from Postgres hold asyncpg's UUID subclass."""
    from asyncpg.pgproto.pgproto import UUID as PostgresUUID

    movie = uuid.uuid4()
    (loaded,) = loads(pickle.dumps([PostgresUUID(movie.bytes)]))

    assert loaded == movie


def test_an_object_array_naming_a_forbidden_global_is_refused(tmp_path: Path) -> None:
    """joblib pickles an object array's items in a nested stream: it goes through the same
    allow-list (joblib < 1.6 read it with a plain unpickler)."""
    path = tmp_path / "values.pkl"
    joblib.dump({"items": np.array([os.system, 1], dtype=object)}, path, compress=3)

    with pytest.raises(ForbiddenGlobal, match="system"):
        load_joblib(path)


@pytest.mark.parametrize("estimator", ["LogisticRegression", "HistGradientBoostingClassifier"])
def test_a_scikit_learn_ranker_loads_and_serves(estimator: str, tmp_path: Path) -> None:
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression

    from interaction_recommender.model.bundle import read_bundle, write_bundle
    from interaction_recommender.training.dataset import features_by_user
    from interaction_recommender.training.fit import FitConfig, Params, fit_model

    world = planted_world(users_per_cluster=20)
    features = features_by_user(world.events, {m.movie_id: m for m in world.catalog}.get)
    model = fit_model(
        features,
        world.catalog,
        Params(20.0, None, {"ease": 1.0}),
        LabelWeights(),
        FitConfig(),
        version="sklearn",
    )
    rows = np.random.default_rng(3).normal(size=(300, len(FEATURE_NAMES))).astype(np.float32)
    labels = (rows[:, 0] + 0.3 * rows[:, 2] > 0).astype(int)
    ranker = (
        LogisticRegression()
        if estimator == "LogisticRegression"
        else HistGradientBoostingClassifier(max_iter=10, random_state=0)
    )
    model.ranker = ranker.fit(rows, labels)
    keys = SigningKeys.parse(generate_key())

    loaded, _ = read_bundle(write_bundle(model, keys), keys)

    assert type(loaded.ranker).__name__ == estimator
    view = build_catalog_view(loaded, world.catalog, catalog_version=1)
    user = next(iter(features.values()))
    answer = recommend(user, Context("home"), 5, loaded, view, now=datetime.now(UTC))
    assert len(answer) == 5
