"""The signed model bundle: what loads, and everything that is refused before it can run code."""

from __future__ import annotations

import io
import os
import pickle
import zipfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
from sklearn.linear_model import LogisticRegression  # type: ignore[import-untyped]

from interaction_recommender.model.arrays import FEATURE_NAMES, RecommenderModel
from interaction_recommender.model.bundle import (
    ARRAYS,
    MANIFEST,
    RANKER,
    BundleError,
    read_bundle,
    read_manifest,
    sign_bundle,
    write_bundle,
)
from interaction_recommender.model.catalog_view import build_catalog_view
from interaction_recommender.model.context import Context
from interaction_recommender.model.engine import recommend
from interaction_recommender.model.signing import SigningKeys, generate_key
from interaction_recommender.training.dataset import features_by_user
from tests.fixtures.model import fit_sample_model
from tests.recs.world import planted_world

KEYS = SigningKeys.parse(generate_key())


@pytest.fixture(scope="module")
def model() -> RecommenderModel:
    return fit_sample_model()


def _members(bundle: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(bundle)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def _zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def test_a_signed_bundle_loads_the_same_model_and_recommends_the_same(
    model: RecommenderModel,
) -> None:
    loaded, manifest = read_bundle(write_bundle(model, KEYS), KEYS)

    assert manifest["format"] == 3
    assert manifest["signature"]["keyId"] == KEYS.signing_key_id
    assert set(manifest["members"]) == {ARRAYS}  # the default ranker needs no pickle
    assert loaded.item_ids == model.item_ids
    for name in ("popularity", "trending", "neighbors", "neighbor_weights", "feature_stats"):
        np.testing.assert_array_equal(getattr(loaded, name), getattr(model, name))
    assert model.ease is not None and loaded.ease is not None
    np.testing.assert_array_equal(loaded.ease, model.ease)
    assert loaded.labels == model.labels
    assert loaded.calibration_lambda == model.calibration_lambda
    assert loaded.data_until == model.data_until and loaded.trained_at == model.trained_at
    # the same lists, reasons and scores for every user of the world
    world = planted_world(users_per_cluster=20)
    view = build_catalog_view(model, world.catalog, catalog_version=0)
    features = features_by_user(world.events, {m.movie_id: m for m in world.catalog}.get)
    now = datetime.now(UTC)
    for user in list(features)[:20]:
        expected = recommend(features[user], Context("home"), 10, model, view, now=now)
        actual = recommend(features[user], Context("home"), 10, loaded, view, now=now)
        assert actual == expected


def test_unsigned_and_wrongly_signed_bundles_are_refused(model: RecommenderModel) -> None:
    with pytest.raises(BundleError, match="not signed"):
        read_bundle(write_bundle(model, None), KEYS)
    other = SigningKeys.parse(generate_key())
    with pytest.raises(BundleError, match="does not verify"):
        read_bundle(write_bundle(model, other), KEYS)


def test_key_rotation_the_first_key_signs_and_every_key_verifies(
    model: RecommenderModel,
) -> None:
    old, new = generate_key(), generate_key()
    signed_with_old = write_bundle(model, SigningKeys.parse(old))
    rotated = SigningKeys.parse(f"{new}, {old}")

    read_bundle(signed_with_old, rotated)  # still verifies during the rotation
    fresh = write_bundle(model, rotated)
    assert read_manifest(fresh)["signature"]["keyId"] == SigningKeys.parse(new).signing_key_id
    with pytest.raises(BundleError, match="does not verify"):
        read_bundle(fresh, SigningKeys.parse(old))  # the old key alone cannot vouch for it


def test_short_keys_are_refused() -> None:
    with pytest.raises(ValueError, match="at least 32"):
        SigningKeys.parse("secret")


def test_a_tampered_member_or_manifest_is_refused(model: RecommenderModel) -> None:
    members = _members(write_bundle(model, KEYS))
    arrays = bytearray(members[ARRAYS])
    arrays[-100] ^= 0xFF
    with pytest.raises(BundleError, match="sha256"):
        read_bundle(_zip({**members, ARRAYS: bytes(arrays)}), KEYS)

    manifest = orjson.loads(members[MANIFEST])
    manifest["calibration"]["lambda"] = 0.9  # anything changed after signing
    with pytest.raises(BundleError, match="does not verify"):
        read_bundle(_zip({**members, MANIFEST: orjson.dumps(manifest)}), KEYS)


@pytest.mark.parametrize("cut", [0.5, 0.99])
def test_a_truncated_or_foreign_file_is_refused(model: RecommenderModel, cut: float) -> None:
    bundle = write_bundle(model, KEYS)
    with pytest.raises(BundleError):
        read_bundle(bundle[: int(len(bundle) * cut)], KEYS)
    with pytest.raises(BundleError, match="not a model bundle"):
        read_bundle(b"\x80\x04not a zip at all", KEYS)
    with pytest.raises(BundleError, match="not a model bundle"):
        read_bundle(_zip({**_members(bundle), "extra.py": b"print(1)"}), KEYS)


class _Marker:
    """Unpickling this creates a file: the proof that code ran."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self) -> tuple[Any, tuple[str, str]]:
        return (open, (self.path, "w"))


def test_a_hostile_ranker_pickle_never_runs_signed_or_not(
    model: RecommenderModel, tmp_path: Path
) -> None:
    marker = tmp_path / "pwned"
    members = _members(write_bundle(model, None))
    manifest = orjson.loads(members[MANIFEST])
    payload = pickle.dumps(_Marker(str(marker)))
    manifest["model"]["ranker"] = {"kind": "pickle", "class": "LogisticRegression"}
    manifest["members"][RANKER] = __import__("hashlib").sha256(payload).hexdigest()
    hostile = _zip({**members, MANIFEST: orjson.dumps(manifest), RANKER: payload})

    with pytest.raises(BundleError, match="not signed"):
        read_bundle(hostile, KEYS)  # refused before anything but the manifest is read
    # even a key holder's signature does not make the unpickler call `open`
    with pytest.raises(BundleError, match="refused"):
        read_bundle(sign_bundle(hostile, KEYS), KEYS)
    assert not marker.exists()


def test_an_object_array_is_refused_without_unpickling(model: RecommenderModel) -> None:
    members = _members(write_bundle(model, None))
    with np.load(io.BytesIO(members[ARRAYS])) as npz:
        arrays = {name: npz[name] for name in npz.files}
    arrays["popularity"] = np.array([os.getcwd, 1], dtype=object)
    buffer = io.BytesIO()
    np.savez(buffer, allow_pickle=True, **arrays)
    manifest = orjson.loads(members[MANIFEST])
    manifest["members"][ARRAYS] = __import__("hashlib").sha256(buffer.getvalue()).hexdigest()
    bundle = _zip({**members, MANIFEST: orjson.dumps(manifest), ARRAYS: buffer.getvalue()})

    with pytest.raises(BundleError, match="cannot be read"):
        read_bundle(sign_bundle(bundle, KEYS), KEYS)


def test_a_bring_your_own_scikit_learn_ranker_round_trips_once_signed(
    model: RecommenderModel,
) -> None:
    rng = np.random.default_rng(0)
    rows = rng.normal(size=(200, len(FEATURE_NAMES))).astype(np.float32)
    labels = (rows[:, 0] + 0.1 * rng.normal(size=200) > 0).astype(int)
    own = RecommenderModel(**{**model.__dict__, "ranker": LogisticRegression().fit(rows, labels)})
    unsigned = write_bundle(own, None)
    assert set(read_manifest(unsigned)["members"]) == {ARRAYS, RANKER}

    loaded, manifest = read_bundle(sign_bundle(unsigned, KEYS), KEYS)

    assert manifest["model"]["ranker"] == {"kind": "pickle", "class": "LogisticRegression"}
    np.testing.assert_allclose(loaded.ranker.predict_proba(rows), own.ranker.predict_proba(rows))
