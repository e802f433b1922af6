"""Deleting expired rows in bounded chunks.

One DELETE of everything expired grows with the backlog: past the statement timeout it fails,
and so does every later run while the table keeps growing. Here each chunk is its own short
statement in its own transaction (the repositories delete at most ``rows`` rows by primary key),
so a run finishes however large the backlog, and other work gets the connection between chunks.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from sqlalchemy.ext.asyncio import AsyncConnection

from interaction_recommender.storage.database import Database

__all__ = ["CHUNK_ROWS", "delete_in_chunks"]

CHUNK_ROWS = 5000
"""Rows per chunk: a few milliseconds of work, far inside any statement timeout."""

Chunk = Callable[[AsyncConnection, int], Awaitable[int]]


async def delete_in_chunks(database: Database, chunk: Chunk, *, rows: int = CHUNK_ROWS) -> int:
    """Run ``chunk(conn, rows)`` (it deletes at most ``rows`` rows and says how many) until a
    chunk deletes fewer; the total."""
    total = 0
    while True:
        async with database.transaction() as conn:
            deleted = await chunk(conn, rows)
        total += deleted
        if deleted < rows:
            return total
        await asyncio.sleep(0)  # let waiting requests have a connection between chunks
