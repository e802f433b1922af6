"""Impressions as training input: a movie shown to a user and ignored at least twice is a weak
negative for that user (LabelWeights.ignored_twice, -0.1 by default; 0 leaves training as it was
without impressions).

"Ignored" is judged from the events, not from the feedback log: an impression of a movie counts as
ignored when the user has no interaction with that movie (a watch, rating or favorite event) at
or after the moment it was shown. So a movie shown once is nothing; shown twice and never touched
is a weak negative; shown twice and watched later is not (it gets its label from the watch, as
always). Movies the user already has a label for are left to that label (training/dataset.py).

Why a weak negative and not a strong one: position bias. Most lists are not read to the end, so
an ignored movie low in a list may simply not have been seen; "twice" filters out the one-off
miss, the small weight keeps the rest from outweighing real dislikes.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncConnection

from interaction_recommender.events.messages import EventMessage
from interaction_recommender.feedback.repository import Impression, ImpressionRepository

__all__ = [
    "IGNORED_TIMES",
    "ShownList",
    "before",
    "ignored_twice",
    "shown_lists",
    "stored_shown_lists",
]

IGNORED_TIMES = 2
"""Ignored impressions of a movie needed before it counts as a weak negative."""

_INTERACTIONS = frozenset({"watch", "rating", "favorite"})


@dataclass(frozen=True, slots=True)
class ShownList:
    """One list shown to a user: what training needs of an impression."""

    user_id: UUID
    movie_ids: tuple[UUID, ...]
    shown_at: datetime


def shown_lists(rows: Iterable[Impression]) -> list[ShownList]:
    """The impression log's rows as training input."""
    return [ShownList(r.user_id, _movie_ids(r.items), r.shown_at) for r in rows]


async def stored_shown_lists(conn: AsyncConnection) -> list[ShownList]:
    """Every impression the log keeps (FEEDBACK_RETENTION_DAYS), reading only what training
    needs: held in memory like the events training reads."""
    rows = await ImpressionRepository(conn).all_shown()
    return [ShownList(user, _movie_ids(items), at) for user, items, at in rows]


def _movie_ids(items: Iterable[Any]) -> tuple[UUID, ...]:
    """The movie ids of a stored list ([movieId, score] pairs); unparseable ones are skipped:
    the log stores whatever the engine returned, as text."""
    movies = []
    for movie, _ in items:
        try:
            movies.append(UUID(str(movie)))
        except ValueError:
            continue
    return tuple(movies)


def ignored_twice(
    shown: Iterable[ShownList], events: Iterable[EventMessage], *, times: int = IGNORED_TIMES
) -> dict[UUID, set[UUID]]:
    """User -> movies shown to them in at least ``times`` impressions that each saw no
    interaction with the movie at or after the moment it was shown."""
    last_touch: dict[tuple[UUID, UUID], datetime] = {}
    for event in events:
        if event.movie_id is None or str(event.event_type) not in _INTERACTIONS:
            continue
        key = (event.user_id, event.movie_id)
        if key not in last_touch or event.client_timestamp > last_touch[key]:
            last_touch[key] = event.client_timestamp
    ignored: dict[tuple[UUID, UUID], int] = defaultdict(int)
    for shown_list in shown:
        for movie in set(shown_list.movie_ids):
            key = (shown_list.user_id, movie)
            touched = last_touch.get(key)
            if touched is None or touched < shown_list.shown_at:
                ignored[key] += 1
    result: dict[UUID, set[UUID]] = defaultdict(set)
    for (user, movie), count in ignored.items():
        if count >= times:
            result[user].add(movie)
    return dict(result)


def before(shown: Iterable[ShownList], cut: Mapping[UUID, datetime]) -> list[ShownList]:
    """The lists shown to each user at or before their ``cut`` (users without one: none), so that
    a model evaluated on a holdout learns nothing from impressions of the held-out period."""
    return [s for s in shown if s.user_id in cut and s.shown_at <= cut[s.user_id]]
