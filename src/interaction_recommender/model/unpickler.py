"""The one way this service unpickles anything: a restricted unpickler.

A pickle names the classes it rebuilds, and a plain ``pickle.load`` imports and calls whatever
it names (``os.system`` included). Here every global a pickle asks for is first mapped through
``ALIASES`` (class paths that moved since an artifact was written: release 0.2 moved the model
from ``recs/`` and ``training/`` to ``model/``), then looked up in ``ALLOWED``; anything else
raises ``ForbiddenGlobal`` before its module is imported. ``trusted_prefixes`` widens the list to
*classes defined in* given packages (e.g. ``sklearn.`` for a bring-your-own ranker): such a
module is imported to look the name up, but a function, or a class another package merely
re-exports, is still refused. joblib 1.6 or newer is required: older releases read the nested
stream of an object array with a plain unpickler, past this check.

This limits what a tampered file can *name*; it does not make a hostile file safe to read in
general (it can still ask for a huge allocation). The artifact's checks before unpickling
(model/artifact.py) remain the gate.
"""

from __future__ import annotations

import importlib
import io
import pickle
from collections.abc import Iterable
from pathlib import Path
from typing import IO, Any

from joblib.compressor import BinaryZlibFile
from joblib.numpy_pickle import NumpyUnpickler

__all__ = ["ALIASES", "ALLOWED", "ForbiddenGlobal", "load_joblib", "loads"]

_PACKAGE = "interaction_recommender"
_ARRAYS, _LABELS = f"{_PACKAGE}.model.arrays", f"{_PACKAGE}.model.labels"

ALIASES: dict[tuple[str, str], tuple[str, str]] = {
    (f"{_PACKAGE}.recs.model", "RecommenderModel"): (_ARRAYS, "RecommenderModel"),
    (f"{_PACKAGE}.recs.model", "LinearRanker"): (_ARRAYS, "LinearRanker"),
    (f"{_PACKAGE}.recs.labels", "LabelWeights"): (_LABELS, "LabelWeights"),
}
"""(module, name) written by an older release -> where it lives now."""

ALLOWED: frozenset[tuple[str, str]] = frozenset(
    {
        # The service's own model classes.
        (_ARRAYS, "RecommenderModel"),
        (_ARRAYS, "LinearRanker"),
        (_LABELS, "LabelWeights"),
        # numpy arrays, dtypes and scalars (numpy 1 and 2 spell the module differently), and
        # joblib's wrapper for arrays stored beside the pickle stream.
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "scalar"),
        ("joblib.numpy_pickle", "NumpyArrayWrapper"),
        # Plain values.
        ("datetime", "datetime"),
        ("datetime", "date"),
        ("datetime", "timedelta"),
        ("datetime", "timezone"),
        ("uuid", "UUID"),
        ("uuid", "SafeUUID"),
        # Movie ids read from Postgres arrive as asyncpg's subclass of uuid.UUID, and artifacts
        # trained from them name it (rebuilt from its 16 bytes).
        ("asyncpg.pgproto.pgproto", "UUID"),
        ("collections", "OrderedDict"),
        ("collections", "defaultdict"),
        ("builtins", "set"),
        ("builtins", "frozenset"),
        ("builtins", "slice"),
        ("builtins", "complex"),
        # numpy random generators, as estimators keep them (rebuilt by name from numpy's own
        # table of bit generators).
        ("numpy.random._pickle", "__randomstate_ctor"),
        ("numpy.random._pickle", "__generator_ctor"),
        ("numpy.random._pickle", "__bit_generator_ctor"),
        ("numpy.random.bit_generator", "SeedSequence"),
        ("numpy.random.bit_generator", "__pyx_unpickle_SeedSequence"),
        ("numpy.random.mtrand", "RandomState"),
        ("numpy.random._generator", "Generator"),
        ("numpy.random._mt19937", "MT19937"),
        ("numpy.random._pcg64", "PCG64"),
        ("numpy.random._pcg64", "PCG64DXSM"),
        ("numpy.random._philox", "Philox"),
        ("numpy.random._sfc64", "SFC64"),
    }
)
"""Every (module, name) an artifact of this service may name."""


class ForbiddenGlobal(pickle.UnpicklingError):
    """The pickle names a class or function outside the allow-list."""


def _resolve(module: str, name: str, trusted_prefixes: tuple[str, ...]) -> Any:
    module, name = ALIASES.get((module, name), (module, name))
    if (module, name) in ALLOWED:
        return getattr(importlib.import_module(module), name)
    if any(module.startswith(prefix) for prefix in trusted_prefixes):
        found = getattr(importlib.import_module(module), name, None)
        defined_in = getattr(found, "__module__", "") or ""
        if isinstance(found, type) and defined_in.startswith(trusted_prefixes):
            return found
    raise ForbiddenGlobal(f"the pickle names {module}.{name}, which is not allowed")


class _RestrictedJoblibUnpickler(NumpyUnpickler):  # type: ignore[misc]
    def __init__(self, path: Path, handle: IO[bytes], trusted_prefixes: tuple[str, ...]) -> None:
        super().__init__(str(path), handle, ensure_native_byte_order=True)
        self._trusted = trusted_prefixes

    def find_class(self, module: str, name: str) -> Any:
        return _resolve(module, name, self._trusted)


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, handle: IO[bytes], trusted_prefixes: tuple[str, ...]) -> None:
        super().__init__(handle)
        self._trusted = trusted_prefixes

    def find_class(self, module: str, name: str) -> Any:
        return _resolve(module, name, self._trusted)


_ZLIB_MAGIC = b"\x78"  # joblib.dump(..., compress=n) writes a zlib stream


def load_joblib(path: Path, *, trusted_prefixes: Iterable[str] = ()) -> Any:
    """What ``joblib.dump`` wrote to ``path`` (uncompressed or zlib, as this service writes it),
    through the allow-list."""
    trusted = tuple(trusted_prefixes)
    with path.open("rb") as raw:
        compressed = raw.read(1) == _ZLIB_MAGIC
        raw.seek(0)
        if not compressed:
            return _RestrictedJoblibUnpickler(path, raw, trusted).load()
        with BinaryZlibFile(raw, "rb") as stream:
            return _RestrictedJoblibUnpickler(path, stream, trusted).load()


def loads(data: bytes, *, trusted_prefixes: Iterable[str] = ()) -> Any:
    """A plain pickle, through the allow-list."""
    return _RestrictedUnpickler(io.BytesIO(data), tuple(trusted_prefixes)).load()
