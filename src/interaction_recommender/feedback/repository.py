"""All impression and feedback SQL (Postgres and SQLite)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import delete, insert, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from interaction_recommender.storage.tables import feedback, impressions

__all__ = ["FeedbackRepository", "FeedbackRow", "Impression", "ImpressionRepository"]


@dataclass(frozen=True, slots=True)
class Impression:
    recommendation_id: UUID
    user_id: UUID
    context: str
    policy: str
    model_version: str
    cached: bool
    items: list[tuple[str, float]]  # (movieId, score) in the order shown
    shown_at: datetime

    def position_of(self, movie_id: UUID) -> int | None:
        """1-based position of a movie in the list, or None."""
        wanted = str(movie_id)
        for position, (movie, _) in enumerate(self.items, start=1):
            if movie == wanted:
                return position
        return None


@dataclass(frozen=True, slots=True)
class FeedbackRow:
    feedback_id: UUID
    dedupe_key: str
    source: str  # explicit | implicit
    user_id: UUID
    recommendation_id: UUID | None
    join_method: str  # recommendationId | window | none | event
    action: str | None
    context: str | None
    model_version: str | None
    impression_count: int
    clicked_item_id: UUID | None
    click_position: int | None
    watch_time_sec: int | None
    occurred_at: datetime
    received_at: datetime


class ImpressionRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def add(self, rows: Sequence[Impression]) -> None:
        if rows:
            await self._conn.execute(
                insert(impressions),
                [
                    {
                        "recommendation_id": r.recommendation_id,
                        "user_id": r.user_id,
                        "context": r.context,
                        "policy": r.policy,
                        "model_version": r.model_version,
                        "cached": r.cached,
                        "items": r.items,
                        "shown_at": r.shown_at,
                    }
                    for r in rows
                ],
            )

    async def get(self, recommendation_id: UUID) -> Impression | None:
        result = await self._conn.execute(
            select(impressions).where(impressions.c.recommendation_id == recommendation_id)
        )
        row = result.mappings().first()
        return _from_mapping(row) if row is not None else None

    async def of_user(
        self, user_id: UUID, since: datetime, until: datetime, *, limit: int = 200
    ) -> list[Impression]:
        """The user's impressions shown in [since, until], newest first."""
        result = await self._conn.execute(
            select(impressions)
            .where(
                impressions.c.user_id == user_id,
                impressions.c.shown_at >= since,
                impressions.c.shown_at <= until,
            )
            .order_by(impressions.c.shown_at.desc())
            .limit(limit)
        )
        return [_from_mapping(row) for row in result.mappings()]

    async def of_users(
        self, user_ids: Sequence[UUID], since: datetime, until: datetime
    ) -> dict[UUID, list[Impression]]:
        """Each user's impressions shown in [since, until], newest first (one query)."""
        result = await self._conn.execute(
            select(impressions)
            .where(
                impressions.c.user_id.in_(list(user_ids)),
                impressions.c.shown_at >= since,
                impressions.c.shown_at <= until,
            )
            .order_by(impressions.c.shown_at.desc())
        )
        by_user: dict[UUID, list[Impression]] = {}
        for row in result.mappings():
            by_user.setdefault(row["user_id"], []).append(_from_mapping(row))
        return by_user

    async def shown_since(
        self, since: datetime, *, context: str | None, model_version: str | None
    ) -> list[Impression]:
        query = select(impressions).where(impressions.c.shown_at >= since)
        if model_version is not None:
            query = query.where(impressions.c.model_version == model_version)
        if context is not None:  # the policy's context name: "home" also finds "home:fallback"
            query = query.where(
                or_(
                    impressions.c.policy == context,
                    impressions.c.policy.like(f"{_escape(context)}:%", escape="\\"),
                )
            )
        result = await self._conn.execute(query)
        return [_from_mapping(row) for row in result.mappings()]

    async def all_shown(self) -> list[tuple[UUID, list[Any], datetime]]:
        """(user, items, shown_at) of every impression kept: what training reads of the log."""
        result = await self._conn.execute(
            select(impressions.c.user_id, impressions.c["items"], impressions.c.shown_at)
        )
        return [(user, items, at) for user, items, at in result.all()]

    async def delete_user(self, user_id: UUID) -> None:
        await self._conn.execute(delete(impressions).where(impressions.c.user_id == user_id))

    async def prune(self, before: datetime, limit: int) -> int:
        """Delete at most ``limit`` impressions shown before ``before``."""
        expired = (
            select(impressions.c.recommendation_id)
            .where(impressions.c.shown_at < before)
            .limit(limit)
        )
        result = await self._conn.execute(
            delete(impressions).where(impressions.c.recommendation_id.in_(expired))
        )
        return int(result.rowcount or 0)


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _from_mapping(row: Any) -> Impression:
    return Impression(
        recommendation_id=row["recommendation_id"],
        user_id=row["user_id"],
        context=row["context"],
        policy=row["policy"],
        model_version=row["model_version"],
        cached=row["cached"],
        items=[(movie, float(score)) for movie, score in row["items"]],
        shown_at=row["shown_at"],
    )


class FeedbackRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn
        self._insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert

    async def add_new(self, rows: Sequence[FeedbackRow]) -> list[FeedbackRow]:
        """Insert, skipping rows whose dedupe_key is stored already; returns the new ones."""
        if not rows:
            return []
        statement = (
            self._insert(feedback)
            .values([_values(r) for r in rows])
            .on_conflict_do_nothing(index_elements=[feedback.c.dedupe_key])
            .returning(feedback.c.dedupe_key)
        )
        inserted = {key for (key,) in (await self._conn.execute(statement)).all()}
        return [r for r in rows if r.dedupe_key in inserted]

    async def by_dedupe_key(self, key: str) -> FeedbackRow | None:
        result = await self._conn.execute(select(feedback).where(feedback.c.dedupe_key == key))
        row = result.mappings().first()
        return FeedbackRow(**row) if row is not None else None

    async def implicit_since(
        self, user_ids: Sequence[UUID], since: datetime
    ) -> set[tuple[UUID, UUID, str]]:
        """(user, movie, action) already attributed to these users since ``since``."""
        result = await self._conn.execute(
            select(feedback.c.user_id, feedback.c.clicked_item_id, feedback.c.action).where(
                feedback.c.user_id.in_(list(user_ids)),
                feedback.c.source == "implicit",
                feedback.c.occurred_at >= since,
            )
        )
        return {(user, movie, action) for user, movie, action in result.all()}

    async def for_impressions(self, recommendation_ids: Sequence[UUID]) -> list[FeedbackRow]:
        rows: list[FeedbackRow] = []
        ids = list(recommendation_ids)
        for start in range(0, len(ids), 5000):  # bounded IN lists
            result = await self._conn.execute(
                select(feedback).where(feedback.c.recommendation_id.in_(ids[start : start + 5000]))
            )
            rows += [FeedbackRow(**row) for row in result.mappings()]
        return rows

    async def delete_user(self, user_id: UUID) -> None:
        await self._conn.execute(delete(feedback).where(feedback.c.user_id == user_id))

    async def prune(self, before: datetime, limit: int) -> int:
        """Delete at most ``limit`` feedback rows received before ``before``."""
        expired = select(feedback.c.feedback_id).where(feedback.c.received_at < before).limit(limit)
        result = await self._conn.execute(
            delete(feedback).where(feedback.c.feedback_id.in_(expired))
        )
        return int(result.rowcount or 0)


def _values(row: FeedbackRow) -> dict[str, Any]:
    return asdict(row)
