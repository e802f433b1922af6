"""Session-level advisory locks (Postgres) for work that outlives a transaction, such as a
training round: the lock is held by a connection with no transaction open."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy import text

from interaction_recommender.storage.database import Database

__all__ = ["try_session_lock"]


@asynccontextmanager
async def try_session_lock(database: Database, key: tuple[int, int]) -> AsyncIterator[bool]:
    """Yields whether this process got the lock ``(namespace, key)``; held until the block ends.
    SQLite: always True (the embedded mode is one process)."""
    if database.dialect != "postgresql":
        yield True
        return
    params = {"ns": key[0], "key": key[1]}
    async with database.engine.connect() as conn:
        mine = bool(
            (await conn.execute(text("SELECT pg_try_advisory_lock(:ns, :key)"), params)).scalar()
        )
        await conn.commit()  # no transaction stays open while the lock is held
        try:
            yield mine
        finally:
            if mine:
                await conn.execute(text("SELECT pg_advisory_unlock(:ns, :key)"), params)
                await conn.commit()
