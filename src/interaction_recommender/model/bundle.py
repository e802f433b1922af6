"""The model bundle (format 3): one zip file whose reading executes no code.

Members:
- ``manifest.json``: what the model is (format and feature-semantics versions, model version,
  training window and counts, offline metrics, hyper-parameters, created-at), the sha256 of
  every other member, and the signature (model/signing.py) over all of that;
- ``arrays.npz``: every array of the model, read with ``allow_pickle=False``;
- ``ranker.pkl``: only for a bring-your-own scikit-learn ranker (the default LinearRanker is two
  arrays and a number); unpickled only after the signature was verified, and then only through
  the restricted unpickler (model/unpickler.py).

Reading checks, in this order, and refuses (``BundleError``) at the first failure: the zip's
member names and sizes; the manifest's signature, with the service's keys (so nothing else of
an unsigned or forged bundle is even parsed); format and feature semantics; the members'
sha256; the arrays' shapes against the item list; the ranker on a probe row.
"""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import zipfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import numpy as np
import numpy.typing as npt
import orjson

from interaction_recommender.model.arrays import (
    FEATURE_NAMES,
    FEATURE_SEMANTICS,
    LinearRanker,
    RecommenderModel,
)
from interaction_recommender.model.labels import LabelWeights
from interaction_recommender.model.signing import SigningKeys
from interaction_recommender.model.unpickler import ForbiddenGlobal, loads
from interaction_recommender.wire import dumps

__all__ = [
    "BUNDLE_FORMAT",
    "RANKER_PACKAGES",
    "BundleError",
    "check_model",
    "describe",
    "read_bundle",
    "read_manifest",
    "save_bundle_file",
    "sign_bundle",
    "write_bundle",
]

BUNDLE_FORMAT = 3
"""3: the zip bundle. 1 and 2 were joblib pickles with a sidecar manifest (model/artifact.py),
read only by `recommender model migrate`."""

RANKER_PACKAGES = ("sklearn.",)
"""Besides the service's own classes, a ranker.pkl may hold classes defined in these packages:
a bring-your-own scikit-learn ranker (docs/recommendations.md; tested with LogisticRegression
and HistGradientBoostingClassifier). Everything else is refused (model/unpickler.py)."""

MANIFEST, ARRAYS, RANKER = "manifest.json", "arrays.npz", "ranker.pkl"
_MAX_MANIFEST_BYTES = 4 << 20


class BundleError(Exception):
    """The bundle is not one this service will load: unsigned, forged, truncated, tampered with,
    or for another format or feature semantics."""


def describe(model: RecommenderModel) -> dict[str, Any]:
    """What a manifest says about a model, whatever the file format."""
    return {
        "version": model.version,
        "trainedAt": model.trained_at,
        "dataWindow": {"from": model.info.get("dataFrom"), "until": model.info.get("dataUntil")},
        "counts": {
            "events": model.info.get("events"),
            "users": model.info.get("users"),
            "items": model.info.get("items"),
            "positives": model.info.get("positives"),
        },
        "featureSchema": {"names": list(FEATURE_NAMES), "ranker": type(model.ranker).__name__},
        "featureSemantics": model.feature_semantics,
        "components": {
            "ease": model.ease is not None,
            "als": model.item_factors is not None,
            "neighbors": int(model.neighbors.shape[1]),
        },
        "params": model.info.get("params"),
        "calibration": {"lambda": model.calibration_lambda, **model.info.get("calibration", {})},
        "labels": model.labels.as_dict(),
        "offlineMetrics": model.info.get("metrics"),
        "libraries": _library_versions(),
    }


def write_bundle(model: RecommenderModel, keys: SigningKeys | None) -> bytes:
    """The model as a bundle, signed with the first of ``keys`` (None: unsigned, for someone to
    sign with `recommender model sign`)."""
    members = {ARRAYS: _arrays_member(model)}
    linear = isinstance(model.ranker, LinearRanker)
    if not linear:
        # protocol 4: numpy arrays through _reconstruct (allow-listed), not protocol 5's _frombuffer
        members[RANKER] = pickle.dumps(model.ranker, protocol=4)
    manifest = {
        "format": BUNDLE_FORMAT,
        **describe(model),
        "model": {
            "dataUntil": model.data_until,
            "alsRegularization": model.als_regularization,
            "alsAlpha": model.als_alpha,
            "ranker": {"kind": "linear", "bias": float(model.ranker.bias)}
            if linear
            else {"kind": "pickle", "class": type(model.ranker).__name__},
            "info": model.info,
        },
        "createdAt": datetime.now(UTC),
        "members": {name: hashlib.sha256(data).hexdigest() for name, data in members.items()},
    }
    plain: dict[str, Any] = orjson.loads(dumps(manifest))  # JSON values only: canonical bytes
    if keys is not None:
        plain["signature"] = keys.sign(_signed_bytes(plain))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(MANIFEST, orjson.dumps(plain, option=orjson.OPT_INDENT_2), _DEFLATED)
        for name, data in members.items():
            archive.writestr(name, data, zipfile.ZIP_STORED)  # floats barely compress
    return buffer.getvalue()


def read_manifest(data: bytes) -> dict[str, Any]:
    """The manifest of a bundle, NOT verified: for listings and messages only."""
    with _open(data) as archive:
        return _manifest_of(archive)


def read_bundle(data: bytes, keys: SigningKeys) -> tuple[RecommenderModel, dict[str, Any]]:
    """The model of a bundle signed by one of ``keys``, and its manifest."""
    with _open(data) as archive:
        manifest = _manifest_of(archive)
        signature = manifest.get("signature")
        if signature is None:
            raise BundleError("the bundle is not signed (`recommender model sign FILE`)")
        if not keys.verify(_signed_bytes(manifest), signature):
            raise BundleError("the bundle's signature does not verify with this service's keys")
        if manifest.get("format") != BUNDLE_FORMAT:
            raise BundleError(f"unknown bundle format {manifest.get('format')!r}")
        semantics = manifest.get("featureSemantics")
        if semantics != FEATURE_SEMANTICS:
            raise BundleError(
                f"the model was trained for feature semantics {semantics!r}, this service "
                f"scores {FEATURE_SEMANTICS}: train a new one (`recommender model upgrade`)"
            )
        if tuple(manifest.get("featureSchema", {}).get("names", ())) != FEATURE_NAMES:
            raise BundleError("the ranker's feature schema differs from this service's")
        members = {name: _member(archive, name, manifest) for name in manifest["members"]}
        model = _model_of(manifest, members)
    check_model(model, manifest)
    return model, manifest


def sign_bundle(data: bytes, keys: SigningKeys) -> bytes:
    """The same bundle signed with the first of ``keys`` (its members checked against the
    manifest's sha256 first: a signature vouches for exactly what the manifest lists)."""
    with _open(data) as archive:
        manifest = _manifest_of(archive)
        members = {name: _member(archive, name, manifest) for name in manifest.get("members", {})}
    if ARRAYS not in members:
        raise BundleError("the bundle has no arrays")
    manifest.pop("signature", None)
    manifest["signature"] = keys.sign(_signed_bytes(manifest))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(MANIFEST, orjson.dumps(manifest, option=orjson.OPT_INDENT_2), _DEFLATED)
        for name, member in members.items():
            archive.writestr(name, member, zipfile.ZIP_STORED)
    return buffer.getvalue()


def save_bundle_file(bundle: bytes, path: Path) -> None:
    """Write ``bundle`` to ``path`` crash-safely: a temporary file in the same folder, fsync,
    rename over ``path``, fsync of the folder. A reader sees the old file or the new one, never
    a part of one and never no file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with temporary.open("wb") as handle:
        handle.write(bundle)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)
    folder = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)


def check_model(model: Any, manifest: dict[str, Any]) -> None:
    """Type and shape checks of a loaded model, and its ranker on a probe row."""
    if not isinstance(model, RecommenderModel):
        raise BundleError(f"the model holds a {type(model).__name__}")
    if model.version != manifest.get("version"):
        raise BundleError("the model's version differs from its manifest's")
    if model.feature_semantics != FEATURE_SEMANTICS or model.feature_stats is None:
        raise BundleError("the model's feature semantics differ from its manifest's")
    n = model.n_items
    shapes_ok = (
        model.popularity.shape == (n,)
        and model.trending.shape == (n,)
        and model.neighbors.shape[0] == n
        and model.neighbor_weights.shape == model.neighbors.shape
        and (model.ease is None or model.ease.shape == (n, n))
        and (model.item_factors is None or model.item_factors.shape[0] == n)
        and model.feature_stats.shape == (2, len(FEATURE_NAMES))
        and bool(np.isfinite(model.feature_stats).all())
        and bool((model.feature_stats[1] > 0).all())
    )
    if not shapes_ok:
        raise BundleError("the model's arrays do not fit its item list")
    ranker = model.ranker
    if not any(hasattr(ranker, m) for m in ("predict_proba", "predict", "decision_function")):
        raise BundleError("the ranker has neither predict_proba nor predict")
    probe = np.zeros((2, len(FEATURE_NAMES)), dtype=np.float32)
    try:
        if hasattr(ranker, "predict_proba"):
            out = np.asarray(ranker.predict_proba(probe))
            if out.shape != (2, 2) or not np.isfinite(out).all():
                raise BundleError("the ranker's predict_proba gives no (n, 2) probabilities")
    except BundleError:
        raise
    except Exception as exc:
        raise BundleError(f"the ranker fails on a feature row: {type(exc).__name__}") from exc


_DEFLATED = zipfile.ZIP_DEFLATED
_OPTIONAL_ARRAYS = ("ease", "item_factors")


def _arrays_member(model: RecommenderModel) -> bytes:
    ids = np.frombuffer(b"".join(u.bytes for u in model.item_ids), dtype=np.uint8)
    arrays: dict[str, npt.NDArray[Any]] = {
        "item_ids": ids.reshape(len(model.item_ids), 16),
        "popularity": model.popularity,
        "trending": model.trending,
        "neighbors": model.neighbors,
        "neighbor_weights": model.neighbor_weights,
    }
    if model.feature_stats is not None:
        arrays["feature_stats"] = model.feature_stats
    for name in _OPTIONAL_ARRAYS:
        value = getattr(model, name)
        if value is not None:
            arrays[name] = value
    if isinstance(model.ranker, LinearRanker):
        arrays["ranker_weights"] = model.ranker.weights
    buffer = io.BytesIO()
    np.savez(buffer, allow_pickle=False, **arrays)
    return buffer.getvalue()


def _model_of(manifest: dict[str, Any], members: dict[str, bytes]) -> RecommenderModel:
    if ARRAYS not in members:
        raise BundleError("the bundle has no arrays")
    try:
        with np.load(io.BytesIO(members[ARRAYS]), allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in npz.files}
        details = manifest["model"]
        ranker_kind = details["ranker"]["kind"]
        if ranker_kind == "linear":
            ranker: Any = LinearRanker(
                weights=arrays["ranker_weights"].astype(np.float32),
                bias=float(details["ranker"]["bias"]),
            )
        elif ranker_kind == "pickle" and RANKER in members:
            ranker = loads(members[RANKER], trusted_prefixes=RANKER_PACKAGES)
        else:
            raise BundleError(f"unknown ranker kind {ranker_kind!r}")
        ids = arrays["item_ids"]
        if ids.ndim != 2 or ids.shape[1] != 16 or ids.dtype != np.uint8:
            raise BundleError("the bundle's item ids are not 16-byte UUIDs")
        data_until = details.get("dataUntil")
        return RecommenderModel(
            version=manifest["version"],
            item_ids=[UUID(bytes=row.tobytes()) for row in ids],
            popularity=arrays["popularity"],
            trending=arrays["trending"],
            neighbors=arrays["neighbors"],
            neighbor_weights=arrays["neighbor_weights"],
            ranker=ranker,
            labels=LabelWeights(**manifest["labels"]),
            trained_at=datetime.fromisoformat(manifest["trainedAt"]),
            data_until=datetime.fromisoformat(data_until) if data_until else None,
            ease=arrays.get("ease"),
            item_factors=arrays.get("item_factors"),
            als_regularization=float(details["alsRegularization"]),
            als_alpha=float(details["alsAlpha"]),
            feature_semantics=int(manifest["featureSemantics"]),
            feature_stats=arrays.get("feature_stats"),
            calibration_lambda=float(manifest["calibration"]["lambda"]),
            info=details.get("info") or {},
        )
    except BundleError:
        raise
    except ForbiddenGlobal as exc:
        raise BundleError(f"the bundle's ranker was refused: {exc}") from exc
    except Exception as exc:  # a field missing or of the wrong type: refuse, never crash
        raise BundleError(f"the bundle cannot be read: {type(exc).__name__}: {exc}") from exc


def _open(data: bytes) -> zipfile.ZipFile:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as exc:
        raise BundleError("not a model bundle (not a zip file, or truncated)") from exc
    names = archive.namelist()
    unknown = set(names) - {MANIFEST, ARRAYS, RANKER}
    if unknown or len(names) != len(set(names)) or MANIFEST not in names:
        archive.close()
        raise BundleError(f"not a model bundle (members {sorted(names)[:5]})")
    return archive


def _manifest_of(archive: zipfile.ZipFile) -> dict[str, Any]:
    if archive.getinfo(MANIFEST).file_size > _MAX_MANIFEST_BYTES:
        raise BundleError("the bundle's manifest is too large")
    try:
        manifest = orjson.loads(archive.read(MANIFEST))
    except (orjson.JSONDecodeError, zipfile.BadZipFile, OSError, EOFError) as exc:
        raise BundleError("the bundle's manifest cannot be read") from exc
    if not isinstance(manifest, dict) or not isinstance(manifest.get("members"), dict):
        raise BundleError("the bundle's manifest lists no members")
    return manifest


def _member(archive: zipfile.ZipFile, name: str, manifest: dict[str, Any]) -> bytes:
    if name not in (ARRAYS, RANKER):
        raise BundleError(f"the manifest lists an unknown member {name!r}")
    try:
        data = archive.read(name)
    except (KeyError, zipfile.BadZipFile, OSError, EOFError) as exc:
        raise BundleError(f"the bundle's {name} is missing or truncated") from exc
    if hashlib.sha256(data).hexdigest() != manifest["members"][name]:
        raise BundleError(f"the bundle's {name} does not match its manifest's sha256")
    return data


def _signed_bytes(manifest: dict[str, Any]) -> bytes:
    """What the signature covers: the manifest without its signature, keys sorted (and so the
    sha256 of every member)."""
    unsigned = {k: v for k, v in manifest.items() if k != "signature"}
    return orjson.dumps(unsigned, option=orjson.OPT_SORT_KEYS)


def _library_versions() -> dict[str, str]:
    import platform

    import scipy

    from interaction_recommender import __version__

    versions = {
        "interaction-recommender": __version__,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "scipy": scipy.__version__,
    }
    try:
        import implicit

        versions["implicit"] = implicit.__version__
    except ImportError:
        pass
    return versions
