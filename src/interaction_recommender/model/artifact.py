"""The model artifact: MODEL_PATH is one joblib file, its manifest MODEL_PATH + ".json" beside it.

Writing: joblib to a temporary file, its sha256 into the manifest (written first, also via a
temporary file), then both renamed into place; the previous pair is kept as ``*.previous`` for
rollback. A reader that sees the new manifest before the new joblib finds a sha256 mismatch and
keeps its current model until the next poll.

Reading (``load_artifact``): manifest -> format version and feature schema -> sha256 of the file
-> only then unpickle, through the restricted unpickler (joblib is pickle: it must never load a
file nobody vouched for, and even then only the allow-listed classes of model/unpickler.py; the
path is never taken from a caller) -> type and shape checks. Artifacts written before the model
moved to model/ load through the unpickler's alias table.
"""

from __future__ import annotations

import hashlib
import os
import platform
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import orjson

from interaction_recommender import __version__
from interaction_recommender.model.arrays import FEATURE_NAMES, FEATURE_SEMANTICS, RecommenderModel
from interaction_recommender.model.unpickler import ForbiddenGlobal, load_joblib
from interaction_recommender.wire import dumps

__all__ = [
    "ARTIFACT_FORMAT",
    "ArtifactError",
    "load_artifact",
    "manifest_path",
    "read_manifest",
    "restore_previous",
    "save_artifact",
]

ARTIFACT_FORMAT = 2
"""2: the manifest carries `featureSemantics` (FEATURE_SEMANTICS 2 and later). Releases that read
format 1 refuse format 2, so during a rolling deploy the old processes keep their model in
memory instead of scoring a new one with the wrong meaning of its features."""

RANKER_PACKAGES = ("sklearn.",)
"""Besides the service's own classes, an artifact may hold classes defined in these packages: a
bring-your-own scikit-learn ranker (docs/recommendations.md; tested with LogisticRegression and
HistGradientBoostingClassifier). Everything else is refused (model/unpickler.py)."""


class ArtifactError(Exception):
    """The artifact is missing, truncated, tampered with, or for another schema."""


def manifest_path(model_path: Path) -> Path:
    return model_path.with_name(model_path.name + ".json")


def _previous(path: Path) -> Path:
    return path.with_name(path.name + ".previous")


def save_artifact(model: RecommenderModel, model_path: Path) -> dict[str, Any]:
    """Write the model and its manifest atomically; keep the previous pair. Returns the manifest."""
    model_path.parent.mkdir(parents=True, exist_ok=True)
    temporary = model_path.with_name(f".{model_path.name}.{os.getpid()}.tmp")
    joblib.dump(model, temporary, compress=3)
    manifest = _manifest(model, temporary)
    manifest_file = manifest_path(model_path)
    temporary_manifest = manifest_file.with_name(f".{manifest_file.name}.{os.getpid()}.tmp")
    temporary_manifest.write_bytes(dumps(manifest))
    for current in (model_path, manifest_file):
        if current.exists():
            os.replace(current, _previous(current))
    os.replace(temporary_manifest, manifest_file)
    os.replace(temporary, model_path)
    return manifest


def read_manifest(model_path: Path) -> dict[str, Any]:
    try:
        manifest: dict[str, Any] = orjson.loads(manifest_path(model_path).read_bytes())
    except FileNotFoundError as exc:
        raise ArtifactError("no manifest beside the model") from exc
    except orjson.JSONDecodeError as exc:
        raise ArtifactError("the manifest is not valid JSON") from exc
    return manifest


def load_artifact(model_path: Path) -> tuple[RecommenderModel, dict[str, Any]]:
    manifest = read_manifest(model_path)
    if manifest.get("format") not in (1, ARTIFACT_FORMAT):
        raise ArtifactError(f"unknown artifact format {manifest.get('format')!r}")
    semantics = manifest.get("featureSemantics", 1)
    if semantics != FEATURE_SEMANTICS:
        raise ArtifactError(
            f"the model was trained for feature semantics {semantics!r}, this service scores "
            f"{FEATURE_SEMANTICS}: train a new one (`recommender model upgrade`)"
        )
    if tuple(manifest.get("featureSchema", {}).get("names", ())) != FEATURE_NAMES:
        raise ArtifactError("the ranker's feature schema differs from this service's")
    try:
        digest = _sha256(model_path)
    except FileNotFoundError as exc:
        raise ArtifactError("the model file is missing") from exc
    if digest != manifest.get("sha256"):
        raise ArtifactError("the model file does not match its manifest's sha256")
    try:
        model = load_joblib(model_path, trusted_prefixes=RANKER_PACKAGES)
    except ForbiddenGlobal as exc:
        raise ArtifactError(f"the model file was refused: {exc}") from exc
    except Exception as exc:  # a truncated or foreign file: refuse it, never crash
        raise ArtifactError(f"the model file cannot be read: {type(exc).__name__}") from exc
    _check(model, manifest)
    return model, manifest


def restore_previous(model_path: Path) -> dict[str, Any]:
    """`recommender model rollback`: put the previous pair back (the current becomes previous)."""
    manifest_file = manifest_path(model_path)
    old_model, old_manifest = _previous(model_path), _previous(manifest_file)
    if not (old_model.exists() and old_manifest.exists()):
        raise ArtifactError("there is no previous model to roll back to")
    swap_model = model_path.with_name(f".{model_path.name}.swap")
    swap_manifest = manifest_file.with_name(f".{manifest_file.name}.swap")
    os.replace(old_model, swap_model)
    os.replace(old_manifest, swap_manifest)
    if model_path.exists():
        os.replace(model_path, old_model)
    if manifest_file.exists():
        os.replace(manifest_file, old_manifest)
    os.replace(swap_manifest, manifest_file)
    os.replace(swap_model, model_path)
    return read_manifest(model_path)


def _check(model: Any, manifest: dict[str, Any]) -> None:
    if not isinstance(model, RecommenderModel):
        raise ArtifactError(f"the model file holds a {type(model).__name__}")
    if model.version != manifest.get("version"):
        raise ArtifactError("the model's version differs from its manifest's")
    if model.feature_semantics != FEATURE_SEMANTICS or model.feature_stats is None:
        raise ArtifactError("the model's feature semantics differ from its manifest's")
    n = model.n_items
    shapes_ok = (
        model.popularity.shape == (n,)
        and model.trending.shape == (n,)
        and model.neighbors.shape[0] == n
        and (model.ease is None or model.ease.shape == (n, n))
        and (model.item_factors is None or model.item_factors.shape[0] == n)
        and model.feature_stats.shape == (2, len(FEATURE_NAMES))
        and bool(np.isfinite(model.feature_stats).all())
        and bool((model.feature_stats[1] > 0).all())
    )
    if not shapes_ok:
        raise ArtifactError("the model's arrays do not fit its item list")
    ranker = model.ranker
    if not any(hasattr(ranker, m) for m in ("predict_proba", "predict", "decision_function")):
        raise ArtifactError("the ranker has neither predict_proba nor predict")
    probe = np.zeros((2, len(FEATURE_NAMES)), dtype=np.float32)
    try:
        if hasattr(ranker, "predict_proba"):
            out = np.asarray(ranker.predict_proba(probe))
            if out.shape != (2, 2) or not np.isfinite(out).all():
                raise ArtifactError("the ranker's predict_proba gives no (n, 2) probabilities")
    except ArtifactError:
        raise
    except Exception as exc:
        raise ArtifactError(f"the ranker fails on a feature row: {type(exc).__name__}") from exc


def _manifest(model: RecommenderModel, path: Path) -> dict[str, Any]:
    return {
        "format": ARTIFACT_FORMAT,
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
        "sha256": _sha256(path),
        "writtenAt": datetime.now(UTC),
    }


def _library_versions() -> dict[str, str]:
    import scipy

    versions = {
        "interaction-recommender": __version__,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "joblib": joblib.__version__,
    }
    try:
        import implicit

        versions["implicit"] = implicit.__version__
    except ImportError:
        pass
    return versions


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
