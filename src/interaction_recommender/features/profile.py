"""The compact serving view of a user's features: what a recommendation needs, decodable in tens
of microseconds (the full document, codec.py, takes about half a millisecond).

Written by the same writer as the full features (the feature store's ``put_many``), beside them,
with the same version: per movie the user touched (history, seen, ratings, favorites) its id and
the few numbers labels are made of, as fixed-width arrays; the genre affinity; the recent search
queries. Labels themselves are not stored: their weights belong to the model
(model/labels.py computes them from this view at request time).

Encoding (little-endian), ``PROFILE_FORMAT`` 1::

    u8 format | u64 version | f64 half-life days | u32 movies | u32 strings length
    movies x 16 bytes ids | movies x f64 progress (NaN: not in the watch history)
    movies x f64 rating (NaN: not rated) | movies x u16 views | movies x u8 flags
    genres x f64 affinity contributions | strings: orjson {"g": genres, "q": recent queries}
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

import numpy as np
import numpy.typing as npt
import orjson

from interaction_recommender.features.state import UserFeatures, affinity_exponent

__all__ = [
    "COMPLETED",
    "FAVORITE_ADDED",
    "FAVORITE_REMOVED",
    "PROFILE_FORMAT",
    "SEEN",
    "UserProfile",
    "decode_profile",
    "encode_profile",
    "profile_of",
]

PROFILE_FORMAT = 1
RECENT_QUERIES = 10
"""Recent searches kept in the view (the engine reads the last EngineSettings.recent_searches)."""

COMPLETED = 1
SEEN = 2
"""In the compact `seen` set (completed or rated, possibly long ago)."""
FAVORITE_ADDED = 4
FAVORITE_REMOVED = 8

_HEADER = struct.Struct("<BQdII")


@dataclass(frozen=True)
class UserProfile:
    user_id: UUID | None
    """None when decoded from storage (the key names the user)."""
    version: int
    movies: npt.NDArray[np.void]
    """The movies the user touched, as 16-byte ids (dtype V16), in first-touched order."""
    progress: npt.NDArray[np.float64]
    """Highest progress (0..100) of a movie in the watch history; NaN otherwise."""
    rating: npt.NDArray[np.float64]
    """The latest rating; NaN when not rated."""
    views: npt.NDArray[np.uint16]
    flags: npt.NDArray[np.uint8]
    """COMPLETED, SEEN, FAVORITE_ADDED, FAVORITE_REMOVED bits."""
    genres: tuple[str, ...]
    genre_values: npt.NDArray[np.float64]
    """The genre-affinity contributions as stored (state.UserFeatures.genre_affinity)."""
    half_life_days: float
    recent_queries: tuple[str, ...]
    """Newest last, like UserFeatures.searches."""

    def genre_affinity_at(self, now: datetime) -> dict[str, float]:
        """As ``features.state.genre_affinity_at``: the scores decayed to ``now``."""
        factor = 2.0 ** -affinity_exponent(now, self.half_life_days)
        return {g: float(v) * factor for g, v in zip(self.genres, self.genre_values, strict=True)}


def profile_of(features: UserFeatures) -> UserProfile:
    """The serving view of full features (the writer's, and training's, one definition)."""
    order: dict[UUID, int] = {}
    for movie_id in (
        *features.seen,
        *features.watch_history,
        *features.ratings,
        *features.favorites,
    ):
        order.setdefault(movie_id, len(order))
    n = len(order)
    progress = np.full(n, math.nan)
    rating = np.full(n, math.nan)
    views = np.zeros(n, dtype=np.uint16)
    flags = np.zeros(n, dtype=np.uint8)
    for movie_id in features.seen:
        flags[order[movie_id]] |= SEEN
    for movie_id, entry in features.watch_history.items():
        i = order[movie_id]
        progress[i] = entry.progress
        views[i] = min(entry.views, 65535)
        if entry.completed:
            flags[i] |= COMPLETED
    for movie_id, rated in features.ratings.items():
        rating[order[movie_id]] = rated.rating
    for movie_id, favorite in features.favorites.items():
        flags[order[movie_id]] |= FAVORITE_ADDED if favorite.added else FAVORITE_REMOVED
    ids = b"".join(movie_id.bytes for movie_id in order)
    return UserProfile(
        user_id=features.user_id,
        version=features.version,
        movies=np.frombuffer(ids, dtype="V16"),
        progress=progress,
        rating=rating,
        views=views,
        flags=flags,
        genres=tuple(features.genre_affinity),
        genre_values=np.array(list(features.genre_affinity.values()), dtype=np.float64),
        half_life_days=features.half_life_days,
        recent_queries=tuple(s.query for s in features.searches[-RECENT_QUERIES:]),
    )


def encode_profile(profile: UserProfile) -> bytes:
    strings = orjson.dumps({"g": list(profile.genres), "q": list(profile.recent_queries)})
    n = profile.movies.size
    return b"".join(
        (
            _HEADER.pack(PROFILE_FORMAT, profile.version, profile.half_life_days, n, len(strings)),
            profile.movies.tobytes(),
            profile.progress.astype("<f8").tobytes(),
            profile.rating.astype("<f8").tobytes(),
            profile.views.astype("<u2").tobytes(),
            profile.flags.tobytes(),
            profile.genre_values.astype("<f8").tobytes(),
            strings,
        )
    )


def decode_profile(data: bytes) -> UserProfile:
    """What ``encode_profile`` wrote; ValueError for anything else."""
    try:
        fmt, version, half_life, n, strings_length = _HEADER.unpack_from(data)
        if fmt != PROFILE_FORMAT:
            raise ValueError(f"unknown profile format {fmt}")
        at = _HEADER.size
        movies = np.frombuffer(data, dtype="V16", count=n, offset=at)
        at += 16 * n
        progress = np.frombuffer(data, dtype="<f8", count=n, offset=at)
        at += 8 * n
        rating = np.frombuffer(data, dtype="<f8", count=n, offset=at)
        at += 8 * n
        views = np.frombuffer(data, dtype="<u2", count=n, offset=at)
        at += 2 * n
        flags = np.frombuffer(data, dtype=np.uint8, count=n, offset=at)
        at += n
        strings_at = len(data) - strings_length
        genre_values = np.frombuffer(data, dtype="<f8", count=(strings_at - at) // 8, offset=at)
        strings = orjson.loads(data[strings_at:])
    except (struct.error, ValueError, TypeError, orjson.JSONDecodeError) as exc:
        raise ValueError(f"corrupt user profile: {exc}") from None
    if len(strings["g"]) != genre_values.size:
        raise ValueError("corrupt user profile: genres")
    return UserProfile(
        user_id=None,
        version=version,
        movies=movies,
        progress=progress,
        rating=rating,
        views=views,
        flags=flags,
        genres=tuple(strings["g"]),
        genre_values=genre_values,
        half_life_days=half_life,
        recent_queries=tuple(strings["q"]),
    )
