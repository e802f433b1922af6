"""A user's streaming features: the configuration, the state and its entries, and how the
genre affinity reads at an instant.

Everything here is plain data. The pure functions that change it live in ``extractor.py``, its
storage encoding in ``codec.py`` and its served document in ``document.py``.

Ordering matters and is part of equality: the ordered maps are ``OrderedDict``s (whose ``==``
compares order), kept oldest first, so that two states compare equal only when every later event
(which may evict "the oldest") would also act on them identically.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import NamedTuple
from uuid import UUID

__all__ = [
    "DEFAULT_CONFIG",
    "EVENT_TYPES",
    "REFERENCE_INSTANT",
    "SEEN_COMPLETED",
    "SEEN_RATED",
    "FavoriteEntry",
    "FeatureConfig",
    "RatingEntry",
    "SearchEntry",
    "UserFeatures",
    "WatchEntry",
    "affinity_exponent",
    "aware",
    "genre_affinity_at",
    "new_features",
]

EVENT_TYPES = ("watch", "search", "rating", "favorite")

REFERENCE_INSTANT = datetime(2020, 1, 1, tzinfo=UTC)
"""Genre-affinity contributions are stored "as of" this fixed instant (see ``genre_affinity``)."""

SEEN_COMPLETED = 1
"""``seen`` flag: the movie was watched to completion (progress >= completion_threshold)."""
SEEN_RATED = 2
"""``seen`` flag: the movie was rated."""


@dataclass(frozen=True, slots=True)
class FeatureConfig:
    """Every cap, threshold and weight of the feature extraction.

    Caps bound the size of one user's state (and therefore of its Redis value and snapshot row);
    when a bounded collection is full, the entry that is dropped is documented per field.
    """

    history_size: int = 200
    """Distinct movies kept in the watch history (the least recently watched is dropped)."""
    seen_cap: int = 5000
    """Movies kept in ``seen`` (completed or rated); the least recently marked is dropped."""
    ratings_cap: int = 1000
    """Rated movies kept; the least recently (re)rated is dropped."""
    favorites_cap: int = 1000
    """Favorite states kept (added or removed); removed entries are dropped first, oldest
    first, then the oldest added ones."""
    searches_kept: int = 50
    """Most recent searches kept (by client time)."""
    keywords_cap: int = 100
    """Search keywords kept; when full, the least frequent (ties: alphabetically first) other
    keyword is dropped to make room for a new one."""
    device_cap: int = 20
    """Distinct devices and, separately, distinct qualities kept (same rule as keywords)."""
    genre_cap: int = 50
    """Genres kept in the affinity map; when full, the one with the smallest absolute score
    (ties: alphabetically first) other than the new one is dropped."""
    completion_threshold: float = 90.0
    """progressPercent at or above which a watch counts as completed."""
    half_life_days: float = 30.0
    """Half-life of a genre-affinity contribution."""
    high_rating: float = 4.0
    """Ratings at or above this are listed in ``high_rated``."""
    session_gap_s: float = 6 * 3600
    """Without a sessionId, a heartbeat this long after the previous one of the same movie
    starts a new view."""
    restart_drop: float = 20.0
    """Without a sessionId, progress falling by more than this many points starts a new view
    (the movie was restarted)."""
    length_tolerance: float = 0.02
    """watchDuration within this fraction of the movie's length, while progress is below
    ``length_progress_below``, is taken to be the movie's length, not time watched."""
    length_progress_below: float = 90.0
    max_view_seconds: int = 86_400
    """Upper bound of the seconds one view can account for (guards against garbage values)."""
    dead_letter_cap: int = 100
    """Dead-lettered sequences remembered per user; the smallest are forgotten first."""
    abandon_threshold: float = 25.0
    """A view whose best progress stays below this is "abandoned early"."""
    abandon_weight: float = -0.25
    """Genre contribution of an abandoned view (not applied to rewatches)."""
    completed_weight: float = 1.0
    """Genre contribution of a completed view; a partial view contributes progress / 100."""
    favorite_weight: float = 1.0
    """Genre contribution of adding a favorite (removing one contributes its negative)."""
    keyword_min_length: int = 2
    keyword_max_length: int = 32
    """Search tokens shorter than the minimum are ignored, longer ones truncated."""

    def __post_init__(self) -> None:
        caps = (
            "history_size",
            "seen_cap",
            "ratings_cap",
            "favorites_cap",
            "searches_kept",
            "keywords_cap",
            "device_cap",
            "genre_cap",
            "dead_letter_cap",
            "keyword_min_length",
            "keyword_max_length",
            "max_view_seconds",
        )
        for name in caps:
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        if not 0.0 < self.completion_threshold <= 100.0:
            raise ValueError("completion_threshold must be in (0, 100]")
        if not self.half_life_days > 0.0:
            raise ValueError("half_life_days must be positive")
        if not self.session_gap_s > 0.0:
            raise ValueError("session_gap_s must be positive")


DEFAULT_CONFIG = FeatureConfig()


class WatchEntry(NamedTuple):
    """One movie of the watch history. A *view* is one sitting (one sessionId, or heartbeats
    without one that are close in time and do not jump back); a movie has one or more views."""

    progress: float
    """Highest progressPercent ever reported for the movie (over all views)."""
    completed: bool
    """progress reached completion_threshold at some time."""
    views: int
    """Distinct views of the movie (a rewatch makes it 2 or more)."""
    rewatches: int
    """Views started when the movie was already completed."""
    watch_seconds: int
    """Best estimate of the seconds watched, summed over the views."""
    last_watched_at: datetime
    """clientTimestamp of the latest heartbeat (in sequence order)."""
    session_key: str | None
    """The current view's sessionId (None for a view of heartbeats without one)."""
    view_seconds: int
    """The current view's seconds so far (max of the estimates of its heartbeats)."""
    view_progress: float | None
    """The current view's last reported progress (to detect restarts)."""
    view_max_progress: float | None
    """The current view's highest progress (its genre contribution follows it)."""
    view_rewatch: bool
    """The current view is a rewatch (no negative contribution when abandoned)."""
    last_sequence: int
    """Sequence of the latest heartbeat applied (a late replay does not reopen views)."""


class RatingEntry(NamedTuple):
    rating: float
    sequence: int
    """The event's sequence: a rating only replaces one with a smaller sequence."""
    rated_at: datetime
    """clientTimestamp of the rating (to retract its genre contribution exactly on an edit)."""


class FavoriteEntry(NamedTuple):
    added: bool
    sequence: int


class SearchEntry(NamedTuple):
    query: str
    at: datetime


def _counts() -> dict[str, int]:
    return dict.fromkeys(EVENT_TYPES, 0)


@dataclass(slots=True)
class UserFeatures:
    """A user's features. A mutable container, but the extractor's functions never mutate the
    features they are given: they return a new object."""

    user_id: UUID
    version: int = 0
    """Increases by one with every call that changed the features."""
    watermark: int = 0
    """Highest event sequence applied (or dead-lettered)."""
    dead_lettered: set[int] = field(default_factory=set)
    """Sequences of this user's events that went to the dead-letter queue: a replay of one of
    them is applied (once) even though it is at or below the watermark."""
    created_at: datetime | None = None
    """Earliest clientTimestamp of the applied events."""
    last_activity_at: datetime | None = None
    """Latest clientTimestamp of the applied events."""
    total_interactions: int = 0
    """Events applied (every watch heartbeat counts)."""
    counts: dict[str, int] = field(default_factory=_counts)
    """Events applied per type (all four keys always present)."""

    watch_history: OrderedDict[UUID, WatchEntry] = field(default_factory=OrderedDict)
    """The ``history_size`` most recently watched movies, least recent first."""
    total_watch_seconds: int = 0
    """Seconds watched over all views ever (also of movies no longer in the history)."""
    view_count: int = 0
    """Views ever started."""
    completed_count: int = 0
    """Views that reached completion (a completed rewatch counts again)."""

    ratings: OrderedDict[UUID, RatingEntry] = field(default_factory=OrderedDict)
    """Latest rating (by sequence) per movie, least recently rated first."""
    high_rated: list[UUID] = field(default_factory=list)
    """Movies of ``ratings`` rated >= high_rating, most recently rated first."""

    favorites: OrderedDict[UUID, FavoriteEntry] = field(default_factory=OrderedDict)
    """Latest favorite state (by sequence) per movie, least recently changed first."""

    searches: list[SearchEntry] = field(default_factory=list)
    """The ``searches_kept`` latest searches, ordered by (client time, query)."""
    keywords: dict[str, int] = field(default_factory=dict)
    """Search keyword -> number of searches that contained it (bounded)."""
    devices: dict[str, int] = field(default_factory=dict)
    """Device (lower case) -> watch events reporting it (bounded)."""
    qualities: dict[str, int] = field(default_factory=dict)
    """Quality (lower case) -> watch events reporting it (bounded)."""

    genre_affinity: dict[str, float] = field(default_factory=dict)
    """Genre -> sum of contributions ``w * 2 ** ((t - REFERENCE_INSTANT) / half_life)``: the
    value does not depend on when it is computed; ``genre_affinity_at`` decays it to an instant.
    """
    half_life_days: float = DEFAULT_CONFIG.half_life_days
    """The half-life ``genre_affinity`` was computed with. Adopted from the config while the
    map is empty; a changed half-life reaches a user with genre data at their next refresh."""

    seen: OrderedDict[UUID, int] = field(default_factory=OrderedDict)
    """Movies watched to completion or rated -> SEEN_* flags, least recently marked first
    (the first to be dropped beyond seen_cap). Test membership with ``movie_id in seen``."""

    @property
    def rating_count(self) -> int:
        return len(self.ratings)

    @property
    def avg_rating(self) -> float:
        """Mean of the kept ratings, 0.0 when there is none (exactly rounded: math.fsum)."""
        if not self.ratings:
            return 0.0
        return math.fsum(entry.rating for entry in self.ratings.values()) / len(self.ratings)

    @property
    def favorite_list(self) -> list[UUID]:
        """Current favorites, most recently added first."""
        return [movie for movie, entry in reversed(self.favorites.items()) if entry.added]

    @property
    def avg_watch_seconds(self) -> float:
        """Seconds per view, 0.0 when there is none."""
        return self.total_watch_seconds / self.view_count if self.view_count else 0.0

    @property
    def seen_count(self) -> int:
        return len(self.seen)


def new_features(user_id: UUID) -> UserFeatures:
    return UserFeatures(user_id=user_id)


_DAY_S = 86_400.0
# Exponents (in half-lives from REFERENCE_INSTANT, 2020-01-01) are clamped to +-960 so that
# 2 ** e times a sum of many contributions stays inside the double range. With the default
# 30-day half-life the API's timestamps (1970..2100) span -608..+974 half-lives: only instants
# after late 2098 are clamped (treated as that instant). A much shorter half-life clamps more.
_MAX_EXPONENT = 960.0


def aware(value: datetime) -> datetime:
    """A naive datetime is taken to be UTC."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def affinity_exponent(at: datetime, half_life_days: float) -> float:
    """(at - REFERENCE_INSTANT) in half-lives, clamped (see _MAX_EXPONENT)."""
    exponent = (aware(at) - REFERENCE_INSTANT).total_seconds() / (half_life_days * _DAY_S)
    return min(max(exponent, -_MAX_EXPONENT), _MAX_EXPONENT)


def genre_affinity_at(features: UserFeatures, now: datetime) -> dict[str, float]:
    """Genre scores decayed to ``now``: sum of ``w * 2 ** ((t - now) / half_life)``."""
    factor = 2.0 ** -affinity_exponent(now, features.half_life_days)
    return {genre: value * factor for genre, value in features.genre_affinity.items()}
