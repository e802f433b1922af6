"""All model-store SQL: versions (bundles in chunks), names, their moves, the shared signing key.

Postgres and SQLite alike. A version's bundle is written as chunks of ``CHUNK_BYTES``, one short
statement each, inside the caller's transaction (the version row first, so a reader that sees
the row sees every chunk once the transaction commits: one commit makes a version exist whole
or not at all, whatever kills the writer).
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from interaction_recommender.storage.tables import (
    model_chunks,
    model_moves,
    model_names,
    model_versions,
    service_secrets,
)

__all__ = ["CHUNK_BYTES", "ModelRepository", "NamedVersion", "StoredVersion"]

CHUNK_BYTES = 1 << 20
_SIGNING_KEY_NAME = "model-signing-key"  # the row's name in service_secrets, not a key


@dataclass(frozen=True)
class StoredVersion:
    version: str
    content_sha256: str
    size_bytes: int
    manifest: dict[str, Any]
    trained_for: str | None
    source: str
    created_at: datetime


@dataclass(frozen=True)
class NamedVersion:
    name: str
    version: str
    training_config: dict[str, Any]
    updated_at: datetime


class ModelRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn
        self._insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert

    # --- versions -------------------------------------------------------------------------
    async def version_by_content(self, content_sha256: str) -> str | None:
        statement = select(model_versions.c.version).where(
            model_versions.c.content_sha256 == content_sha256
        )
        return (await self._conn.execute(statement)).scalar_one_or_none()

    async def add_version(
        self,
        version: str,
        bundle: bytes,
        manifest: Mapping[str, Any],
        *,
        source: str,
        trained_for: str | None,
        now: datetime,
    ) -> None:
        """Store an immutable version (the caller checked that neither its name nor its
        content is stored yet; the keys would refuse a second one)."""
        chunks = [bundle[i : i + CHUNK_BYTES] for i in range(0, len(bundle), CHUNK_BYTES)]
        await self._conn.execute(
            model_versions.insert().values(
                version=version,
                content_sha256=hashlib.sha256(bundle).hexdigest(),
                size_bytes=len(bundle),
                chunks=len(chunks),
                manifest=dict(manifest),
                trained_for=trained_for,
                source=source,
                created_at=now,
            )
        )
        for seq, chunk in enumerate(chunks):
            await self._conn.execute(
                model_chunks.insert().values(version=version, seq=seq, data=chunk)
            )

    async def bundle_chunks(self, version: str) -> AsyncIterator[bytes]:
        """The bundle of ``version``, a chunk at a time, in order (one statement per chunk)."""
        count = (
            await self._conn.execute(
                select(model_versions.c.chunks).where(model_versions.c.version == version)
            )
        ).scalar_one_or_none()
        if count is None:
            raise KeyError(version)
        for seq in range(count):
            statement = select(model_chunks.c.data).where(
                model_chunks.c.version == version, model_chunks.c.seq == seq
            )
            yield bytes((await self._conn.execute(statement)).scalar_one())

    async def manifest(self, version: str) -> dict[str, Any] | None:
        statement = select(model_versions.c.manifest).where(model_versions.c.version == version)
        return (await self._conn.execute(statement)).scalar_one_or_none()

    async def versions(self, limit: int | None = 100) -> list[StoredVersion]:
        """The newest versions first (all when ``limit`` is None)."""
        columns = [c for c in model_versions.c if c.name != "chunks"]
        statement = (
            select(*columns)
            .order_by(model_versions.c.created_at.desc(), model_versions.c.version.desc())
            .limit(limit)
        )
        return [StoredVersion(**row._mapping) for row in await self._conn.execute(statement)]

    async def delete_versions(self, versions: list[str]) -> int:
        """Remove versions (their chunks go with them); a named one is refused by its key."""
        if not versions:
            return 0
        result = await self._conn.execute(
            delete(model_versions).where(model_versions.c.version.in_(versions))
        )
        return int(result.rowcount or 0)

    # --- names ----------------------------------------------------------------------------
    async def names(self) -> dict[str, NamedVersion]:
        rows = await self._conn.execute(select(model_names))
        return {row.name: NamedVersion(**row._mapping) for row in rows}

    async def move_name(
        self,
        name: str,
        version: str,
        *,
        reason: str,
        now: datetime,
        training_config: Mapping[str, Any] | None = None,
    ) -> str | None:
        """Point ``name`` at ``version`` (created when new; its training configuration kept
        unless given) and record the move; returns the version it pointed at before."""
        previous = (
            await self._conn.execute(
                select(model_names.c.version).where(model_names.c.name == name).with_for_update()
            )
        ).scalar_one_or_none()
        if previous is None:
            await self._conn.execute(
                model_names.insert().values(
                    name=name,
                    version=version,
                    training_config=dict(training_config or {}),
                    updated_at=now,
                )
            )
        else:
            values: dict[str, Any] = {"version": version, "updated_at": now}
            if training_config is not None:
                values["training_config"] = dict(training_config)
            await self._conn.execute(
                update(model_names).where(model_names.c.name == name).values(**values)
            )
        await self._conn.execute(
            model_moves.insert().values(
                name=name, version=version, previous_version=previous, reason=reason, moved_at=now
            )
        )
        return previous

    async def moves(self, name: str, limit: int | None = 100) -> list[dict[str, Any]]:
        """The moves of ``name``, newest first."""
        statement = (
            select(model_moves)
            .where(model_moves.c.name == name)
            .order_by(model_moves.c.move_id.desc())
            .limit(limit)
        )
        rows = await self._conn.execute(statement)
        return [{str(k): v for k, v in row._mapping.items()} for row in rows]  # plain str keys

    # --- the shared signing key -----------------------------------------------------------
    async def signing_key(self) -> str | None:
        statement = select(service_secrets.c.value).where(
            service_secrets.c.name == _SIGNING_KEY_NAME
        )
        return (await self._conn.execute(statement)).scalar_one_or_none()

    async def store_signing_key(self, key: str, now: datetime) -> str:
        """Store ``key`` unless a key is stored already; returns the stored one (concurrent
        first runs agree on one key)."""
        statement = (
            self._insert(service_secrets)
            .values(name=_SIGNING_KEY_NAME, value=key, created_at=now)
            .on_conflict_do_nothing(index_elements=["name"])
        )
        await self._conn.execute(statement)
        stored = await self.signing_key()
        assert stored is not None
        return stored
