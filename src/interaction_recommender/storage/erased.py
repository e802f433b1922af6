"""The suppression list every writer of user data consults: `erased_users`."""

from __future__ import annotations

from collections.abc import Iterable
from uuid import UUID

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from interaction_recommender.storage.tables import erased_users

__all__ = ["erased_among"]

_CHUNK = 1000


async def erased_among(conn: AsyncConnection, user_ids: Iterable[UUID]) -> set[UUID]:
    """Those of ``user_ids`` that were erased."""
    ids = list(dict.fromkeys(user_ids))
    found: set[UUID] = set()
    for start in range(0, len(ids), _CHUNK):
        rows = await conn.execute(
            select(erased_users.c.user_id).where(
                erased_users.c.user_id.in_(ids[start : start + _CHUNK])
            )
        )
        found.update(row.user_id for row in rows)
    return found
