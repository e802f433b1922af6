"""The artifact format of the releases before the model bundle (model/bundle.py): one joblib
file and its manifest (file + ".json") beside it. Read by `recommender model migrate`, which turns
it into a signed bundle; nothing serves it any more.

Reading (``load_artifact``): manifest -> format version and feature schema -> sha256 of the file
-> only then unpickle, through the restricted unpickler (joblib is pickle: it must never load a
file nobody vouched for, and even then only the allow-listed classes of model/unpickler.py; the
path is never taken from a caller) -> type and shape checks. Artifacts written before the model
moved to model/ load through the unpickler's alias table.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import orjson

from interaction_recommender.model.arrays import FEATURE_NAMES, FEATURE_SEMANTICS, RecommenderModel
from interaction_recommender.model.bundle import RANKER_PACKAGES, BundleError, check_model
from interaction_recommender.model.unpickler import ForbiddenGlobal, load_joblib

__all__ = [
    "ARTIFACT_FORMAT",
    "ArtifactError",
    "load_artifact",
    "manifest_path",
    "read_manifest",
]

ARTIFACT_FORMAT = 2
"""The last joblib format: its manifest carries `featureSemantics` (FEATURE_SEMANTICS 2 and
later). Format 1 is read too (its models have feature semantics 1: refused, retrain them)."""


class ArtifactError(Exception):
    """The artifact is missing, truncated, tampered with, or for another schema."""


def manifest_path(model_path: Path) -> Path:
    return model_path.with_name(model_path.name + ".json")


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


def _check(model: Any, manifest: dict[str, Any]) -> None:
    try:
        check_model(model, manifest)
    except BundleError as exc:
        raise ArtifactError(str(exc)) from exc


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
