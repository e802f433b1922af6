"""Pure feature extraction: events in, features out. No I/O, no clock, no randomness.

The same events applied in the same order give equal features (``==`` on the dataclass, which
includes the order of the ordered maps); every float is computed by the same operations in the
same order, so building a user incrementally, batch by batch (with redeliveries skipped by the
watermark, and an encode/decode round trip between batches), gives exactly the features of a
rebuild from the distinct events sorted by sequence — apart from ``version``, which counts the
calls that changed something.

Metadata is read defensively: a value of the wrong type, not finite or out of range is treated
as absent (a message from a foreign producer must not poison a user's stream), so the only
exception ``apply_events`` raises on purpose is ValueError for an event of another user.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from interaction_recommender.catalog.movie import CatalogMovie
from interaction_recommender.events.messages import EventMessage
from interaction_recommender.features.state import (
    DEFAULT_CONFIG,
    SEEN_COMPLETED,
    SEEN_RATED,
    FavoriteEntry,
    FeatureConfig,
    RatingEntry,
    SearchEntry,
    UserFeatures,
    WatchEntry,
    affinity_exponent,
    aware,
    new_features,
)

__all__ = ["apply_events", "build_features", "mark_dead_lettered"]

EventPair = tuple[EventMessage, CatalogMovie | None]

_LABEL_MAX = 64
_IDENT_MAX = 128
_QUERY_MAX = 512
_GENRE_MAX = 64
_TOKEN = re.compile(r"[^\W_]+")
_STOP_WORDS = frozenset(
    {"the", "an", "and", "or", "of", "in", "on", "to", "for", "with", "by", "at", "is", "it"}
)


# --- applying events ------------------------------------------------------------------------
def apply_events(
    features: UserFeatures,
    events: Sequence[EventPair],
    config: FeatureConfig = DEFAULT_CONFIG,
    *,
    replay: bool = False,
) -> tuple[UserFeatures, list[EventMessage]]:
    """Apply ``events`` (each with its catalog movie, or None) in the given order; returns the
    new features and the events actually applied. ``features`` is never mutated: it is copied
    once, before the first event that applies; when none applies, ``features`` itself is
    returned (same object, same version). Otherwise the version increases by exactly one.

    An event is skipped when its sequence is at or below the watermark, unless the sequence is
    in ``dead_lettered`` (a replay of a dead-lettered event: applied, and the sequence is
    forgotten, so it applies once). With ``replay=True`` (a dead-letter replay tool), ONLY such
    dead-lettered sequences apply: anything else is skipped, so a replay can never move the
    watermark past events the consumer has not seen yet. Events of another user: ValueError
    (checked before anything is applied)."""
    for event, _ in events:
        if event.user_id != features.user_id:
            raise ValueError(
                f"event {event.event_id} belongs to another user than {features.user_id}"
            )
    work: UserFeatures | None = None
    applied: list[EventMessage] = []
    for event, movie in events:
        current = work if work is not None else features
        sequence = event.sequence
        dead = sequence in current.dead_lettered
        if not dead and (replay or sequence <= current.watermark):
            continue
        if work is None:
            work = _copy(features)
            if not work.genre_affinity:
                work.half_life_days = config.half_life_days
        if dead:
            work.dead_lettered.discard(sequence)
        _apply_one(work, event, movie, config)
        work.watermark = max(work.watermark, sequence)
        applied.append(event)
    if work is None:
        return features, applied
    work.version += 1
    return work, applied


def mark_dead_lettered(
    features: UserFeatures, sequence: int, config: FeatureConfig = DEFAULT_CONFIG
) -> UserFeatures:
    """A copy that remembers ``sequence`` as dead-lettered (so that its replay applies once) and
    whose watermark is at least ``sequence`` (so that later events still apply), version + 1.
    Only the ``dead_letter_cap`` largest sequences are kept (a replay of a forgotten one is
    skipped like any repeat). Already recorded: ``features`` itself is returned."""
    if sequence in features.dead_lettered and features.watermark >= sequence:
        return features
    work = _copy(features)
    work.dead_lettered.add(sequence)
    while len(work.dead_lettered) > config.dead_letter_cap:
        work.dead_lettered.discard(min(work.dead_lettered))
    work.watermark = max(work.watermark, sequence)
    work.version += 1
    return work


def build_features(
    user_id: UUID, events: Iterable[EventPair], config: FeatureConfig = DEFAULT_CONFIG
) -> UserFeatures:
    """Features from scratch (a refresh): the events sorted by sequence (stable; a repeated
    sequence applies once), through ``apply_events``. Version 1 when any event applied."""
    ordered = sorted(events, key=lambda pair: pair[0].sequence)
    return apply_events(new_features(user_id), ordered, config)[0]


def _copy(features: UserFeatures) -> UserFeatures:
    """A copy sharing nothing mutable with ``features`` (entries are immutable tuples)."""
    values: dict[str, Any] = {}
    for name in UserFeatures.__dataclass_fields__:
        value = getattr(features, name)
        if isinstance(value, dict | list | set):
            value = value.copy()
        values[name] = value
    return UserFeatures(**values)


def _apply_one(
    features: UserFeatures, event: EventMessage, movie: CatalogMovie | None, config: FeatureConfig
) -> None:
    at = aware(event.client_timestamp)
    kind = str(event.event_type)
    features.total_interactions += 1
    features.counts[kind] = features.counts.get(kind, 0) + 1
    if features.created_at is None or at < features.created_at:
        features.created_at = at
    if features.last_activity_at is None or at > features.last_activity_at:
        features.last_activity_at = at
    metadata = event.metadata if isinstance(event.metadata, dict) else {}
    if movie is not None and movie.movie_id != event.movie_id:
        movie = None  # a mismatched catalog entry must not lend its genres or length
    if kind == "watch":
        _apply_watch(features, event, at, metadata, movie, config)
    elif kind == "rating":
        _apply_rating(features, event, at, metadata, movie, config)
    elif kind == "favorite":
        _apply_favorite(features, event, at, metadata, movie, config)
    elif kind == "search":
        _apply_search(features, at, metadata, config)


def _apply_watch(
    features: UserFeatures,
    event: EventMessage,
    at: datetime,
    metadata: dict[str, Any],
    movie: CatalogMovie | None,
    config: FeatureConfig,
) -> None:
    if (device := _label(metadata.get("device"))) is not None:
        _bump(features.devices, device, config.device_cap)
    if (quality := _label(metadata.get("quality"))) is not None:
        _bump(features.qualities, quality, config.device_cap)
    movie_id = event.movie_id
    if movie_id is None:
        return
    progress = _progress(metadata.get("progressPercent"))
    reported = _seconds(metadata.get("watchDuration"))
    session = _ident(metadata.get("sessionId"))
    threshold = config.completion_threshold
    entry = features.watch_history.get(movie_id)

    if entry is not None and event.sequence < entry.last_sequence:
        # A late replay (dead-lettered, applied after later heartbeats of the movie): it can
        # only raise the movie's best progress; views, seconds and genres are left alone.
        if progress is not None and progress > entry.progress:
            completed = entry.completed or progress >= threshold
            features.watch_history[movie_id] = entry._replace(
                progress=progress, completed=completed
            )
            if progress >= threshold:
                _mark_seen(features, movie_id, SEEN_COMPLETED, config)
        return

    if entry is None:
        best, completed, views, rewatches, total_seconds = 0.0, False, 0, 0, 0
        session_key: str | None = None
        view_seconds, view_progress, view_max = 0, None, None
        view_rewatch = False
        was_completed = bool(features.seen.get(movie_id, 0) & SEEN_COMPLETED)
        new_view = True
    else:
        best, completed, views, rewatches = (
            entry.progress,
            entry.completed,
            entry.views,
            entry.rewatches,
        )
        total_seconds, session_key = entry.watch_seconds, entry.session_key
        view_seconds, view_progress, view_max = (
            entry.view_seconds,
            entry.view_progress,
            entry.view_max_progress,
        )
        view_rewatch = entry.view_rewatch
        was_completed = entry.completed
        if session is not None and session_key is not None:
            new_view = session != session_key
        else:  # no id on one side: a long pause or a jump back starts a new view
            gap = (at - entry.last_watched_at).total_seconds()
            dropped = (
                progress is not None
                and view_progress is not None
                and view_progress - progress > config.restart_drop
            )
            new_view = gap > config.session_gap_s or dropped
            if not new_view and session is not None:
                session_key = session  # the view's first heartbeats had no id yet

    if new_view:
        views += 1
        features.view_count += 1
        view_rewatch = was_completed
        rewatches += int(view_rewatch)
        session_key = session
        view_seconds, view_progress, view_max = 0, None, None

    length = _length_seconds(movie)
    estimate = _view_seconds(
        reported, progress if progress is not None else view_progress, length, config
    )
    if estimate is not None and estimate > view_seconds:
        increase = estimate - view_seconds
        view_seconds = estimate
        total_seconds += increase
        features.total_watch_seconds += increase

    if progress is not None:
        view_progress = progress
        new_max = progress if view_max is None else max(view_max, progress)
        if new_max != view_max:
            old_weight = _view_weight(view_max, view_rewatch, config)
            new_weight = _view_weight(new_max, view_rewatch, config)
            if new_weight != old_weight:
                _contribute(features, movie, new_weight - old_weight, at, config)
            if new_max >= threshold and (view_max is None or view_max < threshold):
                features.completed_count += 1
            view_max = new_max
        if progress > best:
            best = progress
        if progress >= threshold:
            completed = True
            _mark_seen(features, movie_id, SEEN_COMPLETED, config)

    features.watch_history[movie_id] = WatchEntry(
        progress=best,
        completed=completed,
        views=views,
        rewatches=rewatches,
        watch_seconds=total_seconds,
        last_watched_at=at,
        session_key=session_key,
        view_seconds=view_seconds,
        view_progress=view_progress,
        view_max_progress=view_max,
        view_rewatch=view_rewatch,
        last_sequence=event.sequence,
    )
    features.watch_history.move_to_end(movie_id)
    while len(features.watch_history) > config.history_size:
        features.watch_history.popitem(last=False)


def _view_seconds(
    reported: int | None, progress: float | None, length: int | None, config: FeatureConfig
) -> int | None:
    """Seconds watched so far in the view, as far as this heartbeat tells (None: unknown)."""
    looks_like_length = (
        reported is not None
        and length is not None
        and abs(reported - length) <= config.length_tolerance * length
        and (progress is None or progress < config.length_progress_below)
    )
    if reported is None or looks_like_length:
        if progress is None or length is None:
            return None
        estimate = round(progress * length / 100.0)
    else:
        estimate = reported
    return min(estimate, config.max_view_seconds)


def _view_weight(best: float | None, rewatch: bool, config: FeatureConfig) -> float:
    """Genre contribution of a view whose best progress is ``best``."""
    if best is None:
        return 0.0
    if best >= config.completion_threshold:
        return config.completed_weight
    if best < config.abandon_threshold:
        return 0.0 if rewatch else config.abandon_weight
    return best / 100.0


def _apply_rating(
    features: UserFeatures,
    event: EventMessage,
    at: datetime,
    metadata: dict[str, Any],
    movie: CatalogMovie | None,
    config: FeatureConfig,
) -> None:
    movie_id = event.movie_id
    rating = _rating(metadata.get("rating"))
    if movie_id is None or rating is None:
        return
    old = features.ratings.get(movie_id)
    if old is not None:
        if old.sequence >= event.sequence:
            return  # a newer rating is already applied (previousRating is informational)
        _contribute(features, movie, -_rating_weight(old.rating), old.rated_at, config)
        del features.ratings[movie_id]
        if movie_id in features.high_rated:
            features.high_rated.remove(movie_id)
    _contribute(features, movie, _rating_weight(rating), at, config)
    features.ratings[movie_id] = RatingEntry(rating, event.sequence, at)
    if rating >= config.high_rating:
        features.high_rated.insert(0, movie_id)
    while len(features.ratings) > config.ratings_cap:
        dropped, _ = features.ratings.popitem(last=False)
        if dropped in features.high_rated:
            features.high_rated.remove(dropped)
    _mark_seen(features, movie_id, SEEN_RATED, config)


def _rating_weight(rating: float) -> float:
    return (rating - 3.0) / 2.0


def _apply_favorite(
    features: UserFeatures,
    event: EventMessage,
    at: datetime,
    metadata: dict[str, Any],
    movie: CatalogMovie | None,
    config: FeatureConfig,
) -> None:
    movie_id = event.movie_id
    action = metadata.get("action")
    if action is None:
        added = True  # the platform's favorite button without an action adds
    elif isinstance(action, str) and action.strip().lower() in ("add", "remove"):
        added = action.strip().lower() == "add"
    else:
        return
    if movie_id is None:
        return
    old = features.favorites.get(movie_id)
    if old is not None:
        if old.sequence >= event.sequence:
            return
        del features.favorites[movie_id]
    # Only a change of state contributes (an unknown movie counts as "not added" for an add and
    # as "added" for a remove: a removal still says something about the user's taste).
    if added and (old is None or not old.added):
        _contribute(features, movie, config.favorite_weight, at, config)
    elif not added and (old is None or old.added):
        _contribute(features, movie, -config.favorite_weight, at, config)
    features.favorites[movie_id] = FavoriteEntry(added, event.sequence)
    while len(features.favorites) > config.favorites_cap:
        removed = next((m for m, e in features.favorites.items() if not e.added), None)
        if removed is not None:
            del features.favorites[removed]
        else:
            features.favorites.popitem(last=False)


def _apply_search(
    features: UserFeatures, at: datetime, metadata: dict[str, Any], config: FeatureConfig
) -> None:
    query = _text(metadata.get("query"), _QUERY_MAX)
    if query is None:
        return
    bisect.insort(features.searches, SearchEntry(query, at), key=_search_order)
    while len(features.searches) > config.searches_kept:
        del features.searches[0]
    for token in _tokens(query, config):
        _bump(features.keywords, token, config.keywords_cap)


def _search_order(entry: SearchEntry) -> tuple[datetime, str]:
    return entry.at, entry.query


def _tokens(query: str, config: FeatureConfig) -> list[str]:
    """Distinct lower-case word tokens of a query, in order of appearance."""
    tokens: dict[str, None] = {}
    for match in _TOKEN.findall(query.lower()):
        if len(match) >= config.keyword_min_length and match not in _STOP_WORDS:
            tokens[match[: config.keyword_max_length]] = None
    return list(tokens)


def _mark_seen(features: UserFeatures, movie_id: UUID, flag: int, config: FeatureConfig) -> None:
    flags = features.seen.pop(movie_id, 0)
    features.seen[movie_id] = flags | flag
    while len(features.seen) > config.seen_cap:
        features.seen.popitem(last=False)


def _bump(counter: dict[str, int], key: str, cap: int) -> None:
    """Count ``key``; a new key beyond ``cap`` replaces the least frequent (then
    alphabetically first) one."""
    if key in counter:
        counter[key] += 1
        return
    if len(counter) >= cap:
        _, victim = min((count, name) for name, count in counter.items())
        del counter[victim]
    counter[key] = 1


def _contribute(
    features: UserFeatures,
    movie: CatalogMovie | None,
    weight: float,
    at: datetime,
    config: FeatureConfig,
) -> None:
    """Add ``weight`` at instant ``at`` to each genre of ``movie``, stored against the fixed
    reference instant: ``weight * 2 ** ((at - REFERENCE_INSTANT) / half_life)``."""
    if movie is None or weight == 0.0:
        return
    genres = _genres(movie)
    if not genres:
        return
    scaled = weight * 2.0 ** affinity_exponent(at, features.half_life_days)
    affinity = features.genre_affinity
    for genre in genres:
        if genre in affinity:
            affinity[genre] += scaled
            continue
        if len(affinity) >= config.genre_cap:
            _, victim = min((abs(value), name) for name, value in affinity.items())
            del affinity[victim]
        affinity[genre] = scaled


def _genres(movie: CatalogMovie) -> list[str]:
    genres: dict[str, None] = {}
    for genre in movie.genres:
        if isinstance(genre, str) and (name := genre.strip()[:_GENRE_MAX]):
            genres[name] = None
    return list(genres)


# --- reading metadata defensively -------------------------------------------------------------
def _finite(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:  # an int beyond the double range
        return None
    return number if number - number == 0.0 else None  # not inf, not nan


def _progress(value: Any) -> float | None:
    number = _finite(value)
    return None if number is None else min(max(number, 0.0), 100.0)


def _rating(value: Any) -> float | None:
    number = _finite(value)
    return number if number is not None and 0.5 <= number <= 5.0 else None


def _seconds(value: Any) -> int | None:
    number = _finite(value)
    if number is None or number < 0:
        return None
    return int(min(number, 2.0**31))


def _length_seconds(movie: CatalogMovie | None) -> int | None:
    if movie is None:
        return None
    minutes = movie.duration_minutes
    if isinstance(minutes, bool) or not isinstance(minutes, int) or minutes <= 0:
        return None
    return minutes * 60


def _text(value: Any, limit: int) -> str | None:
    if not isinstance(value, str):
        return None
    value = value.strip()[:limit]
    return value or None


def _label(value: Any) -> str | None:
    text = _text(value, _LABEL_MAX)
    return text.lower() if text is not None else None


def _ident(value: Any) -> str | None:
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    return _text(value, _IDENT_MAX)
