"""Session-level advisory locks (Postgres) for work that outlives a transaction, such as a
training round: the lock is held by a connection with no transaction open.

Every (namespace, key) pair the service takes is listed in docs/storage.md; the session-level
ones live here so that two kinds of work can never share a key by accident (the trainer once
held the migrations' key, and `recommender migrate` failed while a worker trained)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy import text

from interaction_recommender.storage.database import Database

__all__ = ["MIGRATIONS_LOCK", "TRAINER_LOCK", "try_session_lock"]

MIGRATIONS_LOCK = (3, 0)
"""`recommender migrate` (and a server that migrates at start-up): concurrent runs wait."""
TRAINER_LOCK = (3, 1)
"""`recommender train` and the worker's scheduled training: one trainer at a time."""


@asynccontextmanager
async def try_session_lock(
    database: Database, key: tuple[int, int], *, wait_s: float = 0.0, poll_s: float = 0.5
) -> AsyncIterator[bool]:
    """Yields whether this process got the lock ``(namespace, key)`` within ``wait_s`` (tried
    every ``poll_s``: a blocking pg_advisory_lock would end at the statement timeout); held
    until the block ends. SQLite: always True (the embedded mode is one process)."""
    if database.dialect != "postgresql":
        yield True
        return
    params = {"ns": key[0], "key": key[1]}
    deadline = time.monotonic() + wait_s
    async with database.engine.connect() as conn:
        while True:
            statement = text("SELECT pg_try_advisory_lock(:ns, :key)")
            mine = bool((await conn.execute(statement, params)).scalar())
            await conn.commit()  # no transaction stays open while the lock is held
            if mine or time.monotonic() >= deadline:
                break
            await asyncio.sleep(poll_s)
        try:
            yield mine
        finally:
            if mine:
                await conn.execute(text("SELECT pg_advisory_unlock(:ns, :key)"), params)
                await conn.commit()
