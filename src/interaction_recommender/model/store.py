"""The model store: the one owner of model versions, the names that point at them and their
history, shared by every process on every host through the database.

- A version is a signed bundle (model/bundle.py), immutable, stored once by content: adding the
  same bytes again is a no-op that answers the stored version.
- Nothing enters the store unverified: ``add`` reads the whole bundle with the service's keys
  (signature, members, arrays, ranker) before it writes a row.
- A name (``champion``; challengers for experiments) points at one version; every move is kept
  (``history``), and ``rollback`` moves a name back to the version it pointed at before (or to
  any kept version).
- ``collect_garbage`` keeps every named version, every version a caller says is in use (an
  unfinished experiment's), and the last ``keep`` versions each name pointed at before.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import structlog

from interaction_recommender.model.arrays import RecommenderModel
from interaction_recommender.model.bundle import read_bundle
from interaction_recommender.model.repository import ModelRepository, NamedVersion, StoredVersion
from interaction_recommender.model.signing import SigningKeys
from interaction_recommender.storage.database import Database

__all__ = ["CHAMPION", "Added", "ModelStore", "StoreError"]

log = structlog.get_logger(__name__)

CHAMPION = "champion"
"""The name `recommender serve` serves by default; scheduled training moves it."""


class StoreError(Exception):
    """A request the store refuses: an unknown name or version, a version name taken by other
    content, nothing to roll back to."""


@dataclass(frozen=True)
class Added:
    version: str
    created: bool
    """False: the same bytes were stored already (an import is idempotent by content)."""
    moved: bool
    """Whether the name now points at this version (it did not move to an older one)."""
    previous: str | None
    """The version the name pointed at before the move."""


class ModelStore:
    def __init__(self, database: Database, keys: SigningKeys) -> None:
        self._database = database
        self._keys = keys

    async def add(
        self,
        bundle: bytes,
        *,
        source: str,
        name: str | None = CHAMPION,
        only_if_newer: bool = False,
        training_config: Mapping[str, Any] | None = None,
    ) -> Added:
        """Verify ``bundle`` and store it as a version (once); point ``name`` at it, unless
        ``only_if_newer`` and the name's version was trained later (MODEL_PATH's import).
        Raises BundleError when the bundle is refused, StoreError when its version name is
        taken by other content."""
        _, manifest = await asyncio.to_thread(read_bundle, bundle, self._keys)
        version = str(manifest["version"])
        digest = hashlib.sha256(bundle).hexdigest()
        now = datetime.now(UTC)
        async with self._database.transaction() as conn:
            repository = ModelRepository(conn)
            stored = await repository.version_by_content(digest)
            if stored is None:
                if await repository.manifest(version) is not None:
                    raise StoreError(f"version {version!r} is stored with other content")
                await repository.add_version(
                    version, bundle, manifest, source=source, trained_for=name, now=now
                )
            version = stored or version
            if name is None:
                return Added(version, stored is None, False, None)
            current = (await repository.names()).get(name)
            if current is not None and current.version == version:
                return Added(version, stored is None, True, current.version)
            if only_if_newer and current is not None:
                current_manifest = await repository.manifest(current.version) or {}
                if str(current_manifest.get("trainedAt", "")) >= str(manifest["trainedAt"]):
                    return Added(version, stored is None, False, current.version)
            previous = await repository.move_name(
                name, version, reason=source, now=now, training_config=training_config
            )
        log.info("model_version_added", version=version, name=name, previous=previous)
        return Added(version, stored is None, True, previous)

    async def bundle(self, version: str) -> bytes:
        """The stored bytes of ``version`` (read in chunks)."""
        async with self._database.transaction() as conn:
            try:
                return b"".join(
                    [chunk async for chunk in ModelRepository(conn).bundle_chunks(version)]
                )
            except KeyError:
                raise StoreError(f"no version {version!r}") from None

    async def load(self, version: str) -> tuple[RecommenderModel, dict[str, Any]]:
        """``version``'s model, verified (BundleError when its signature no longer verifies,
        e.g. after its key was retired)."""
        return await asyncio.to_thread(self.verify, await self.bundle(version))

    def verify(self, bundle: bytes) -> tuple[RecommenderModel, dict[str, Any]]:
        """The model of a bundle, read with this store's keys (CPU-bound: call in a thread)."""
        return read_bundle(bundle, self._keys)

    async def names(self) -> dict[str, NamedVersion]:
        async with self._database.transaction() as conn:
            return await ModelRepository(conn).names()

    async def versions(self, limit: int | None = 100) -> list[StoredVersion]:
        async with self._database.transaction() as conn:
            return await ModelRepository(conn).versions(limit)

    async def history(self, name: str, limit: int = 100) -> list[dict[str, Any]]:
        async with self._database.transaction() as conn:
            return await ModelRepository(conn).moves(name, limit)

    async def rollback(self, name: str = CHAMPION, to: str | None = None) -> tuple[str, str]:
        """Point ``name`` back at ``to``, or at the version it pointed at before its latest
        move; returns (from, to). The target is verified before the name moves."""
        async with self._database.transaction() as conn:
            repository = ModelRepository(conn)
            current = (await repository.names()).get(name)
            if current is None:
                raise StoreError(f"no model is named {name!r}")
            if to is None:
                moves = await repository.moves(name, limit=1)
                to = moves[0]["previous_version"] if moves else None
                if to is None:
                    raise StoreError(f"{name!r} has no earlier version to roll back to")
        await self.load(to)  # refuse a target that no longer verifies, before anything moves
        async with self._database.transaction() as conn:
            await ModelRepository(conn).move_name(
                name, to, reason="rollback", now=datetime.now(UTC)
            )
        log.info("model_rolled_back", name=name, previous=current.version, version=to)
        return current.version, to

    async def collect_garbage(self, keep: int, in_use: Iterable[str] = ()) -> list[str]:
        """Delete the versions nothing needs: not named, not ``in_use``, not among the last
        ``keep`` versions any name pointed at before. Returns what was deleted."""
        async with self._database.transaction() as conn:
            repository = ModelRepository(conn)
            names = await repository.names()
            needed = {named.version for named in names.values()} | set(in_use)
            for name in names:
                earlier = [m["previous_version"] for m in await repository.moves(name, None)]
                kept = list(dict.fromkeys(v for v in earlier if v is not None))[:keep]
                needed.update(kept)
            stored = [v.version for v in await repository.versions(None)]
            doomed = [v for v in stored if v not in needed]
            await repository.delete_versions(doomed)
        if doomed:
            log.info("model_versions_deleted", versions=doomed)
        return doomed
