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
import zlib
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import orjson

from interaction_recommender.catalog.cache import CatalogMovie
from interaction_recommender.events.messages import EventMessage
from interaction_recommender.features.model import (
    DEFAULT_CONFIG,
    REFERENCE_INSTANT,
    SEEN_COMPLETED,
    SEEN_RATED,
    FavoriteEntry,
    FeatureConfig,
    RatingEntry,
    SearchEntry,
    UserFeatures,
    WatchEntry,
    new_features,
)

__all__ = [
    "FORMAT_VERSION",
    "apply_events",
    "build_features",
    "decode",
    "encode",
    "feature_document",
    "genre_affinity_at",
    "mark_dead_lettered",
]

EventPair = tuple[EventMessage, CatalogMovie | None]

_DAY_S = 86_400.0
# Exponents (in half-lives from REFERENCE_INSTANT, 2020-01-01) are clamped to +-960 so that
# 2 ** e times a sum of many contributions stays inside the double range. With the default
# 30-day half-life the API's timestamps (1970..2100) span -608..+974 half-lives: only instants
# after late 2098 are clamped (treated as that instant). A much shorter half-life clamps more.
_MAX_EXPONENT = 960.0
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
    at = _aware(event.client_timestamp)
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
    scaled = weight * 2.0 ** _exponent(at, features.half_life_days)
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


def _exponent(at: datetime, half_life_days: float) -> float:
    """(at - REFERENCE_INSTANT) in half-lives, clamped (see _MAX_EXPONENT)."""
    exponent = (_aware(at) - REFERENCE_INSTANT).total_seconds() / (half_life_days * _DAY_S)
    return min(max(exponent, -_MAX_EXPONENT), _MAX_EXPONENT)


def genre_affinity_at(features: UserFeatures, now: datetime) -> dict[str, float]:
    """Genre scores decayed to ``now``: sum of ``w * 2 ** ((t - now) / half_life)``."""
    factor = 2.0 ** -_exponent(now, features.half_life_days)
    return {genre: value * factor for genre, value in features.genre_affinity.items()}


# --- reading metadata defensively -------------------------------------------------------------
def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


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


# --- the served document ----------------------------------------------------------------------
def feature_document(features: UserFeatures, *, now: datetime | None = None) -> dict[str, Any]:
    """The camelCase document served by GET /features and published on processed_features.
    Values are orjson-serialisable (UUIDs and aware UTC datetimes; dump with OPT_UTC_Z). Lists
    are most recent first; maps of counts and scores are sorted by value, descending."""
    reference = now if now is not None else features.last_activity_at
    affinity = genre_affinity_at(features, reference) if reference is not None else {}
    return {
        "totalInteractions": features.total_interactions,
        "counts": dict(features.counts),
        "avgRating": float(features.avg_rating),
        "ratingCount": features.rating_count,
        "highRated": list(features.high_rated),
        "favorites": features.favorite_list,
        "watchHistory": [
            {
                "movieId": movie_id,
                "progress": entry.progress,
                "completed": entry.completed,
                "views": entry.views,
                "rewatches": entry.rewatches,
                "watchSeconds": entry.watch_seconds,
                "lastWatchedAt": _utc(entry.last_watched_at),
            }
            for movie_id, entry in reversed(features.watch_history.items())
        ],
        "totalWatchSeconds": features.total_watch_seconds,
        "viewCount": features.view_count,
        "avgWatchSeconds": float(features.avg_watch_seconds),
        "completedCount": features.completed_count,
        "recentSearches": [
            {"query": search.query, "at": _utc(search.at)} for search in reversed(features.searches)
        ],
        "topKeywords": [
            {"keyword": keyword, "count": count} for keyword, count in _by_value(features.keywords)
        ],
        "devices": dict(_by_value(features.devices)),
        "qualities": dict(_by_value(features.qualities)),
        "genreAffinity": dict(_by_value(affinity)),
        "seenCount": features.seen_count,
        "createdAt": _utc(features.created_at),
        "lastActivityAt": _utc(features.last_activity_at),
    }


def _by_value(mapping: dict[str, Any]) -> list[tuple[str, Any]]:
    return sorted(mapping.items(), key=lambda item: (-item[1], item[0]))


def _utc(value: datetime | None) -> datetime | None:
    return None if value is None else _aware(value).astimezone(UTC)


# --- compact storage encoding -----------------------------------------------------------------
FORMAT_VERSION = 1
"""First byte of ``encode``'s output; ``decode`` refuses any other."""

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_ZLIB_LEVEL = 1  # fastest: level 6 cost 17% of the worker for a few % smaller values


def _us(value: datetime) -> int:
    return (_aware(value) - _EPOCH) // _MICROSECOND


def _at(value: int) -> datetime:
    return _EPOCH + timedelta(microseconds=value)


def _opt_us(value: datetime | None) -> int | None:
    return None if value is None else _us(value)


def _opt_at(value: int | None) -> datetime | None:
    return None if value is None else _at(value)


def encode(features: UserFeatures) -> bytes:
    """``FORMAT_VERSION`` byte + zlib(4-byte JSON length + JSON + id table). Movie and user ids
    are 16 raw bytes each in the id table, referred to by index from the JSON; timestamps are
    integer microseconds since 1970. ``decode(encode(f)) == f`` exactly."""
    index: dict[UUID, int] = {}
    table = bytearray()

    def ref(movie_id: UUID) -> int:
        position = index.get(movie_id)
        if position is None:
            position = index[movie_id] = len(index)
            table.extend(movie_id.bytes)
        return position

    ref(features.user_id)  # always index 0
    document = {
        "v": features.version,
        "w": features.watermark,
        "dl": sorted(features.dead_lettered),
        "ca": _opt_us(features.created_at),
        "la": _opt_us(features.last_activity_at),
        "ti": features.total_interactions,
        "n": features.counts,
        "h": [
            [
                ref(movie_id),
                e.progress,
                e.completed,
                e.views,
                e.rewatches,
                e.watch_seconds,
                _us(e.last_watched_at),
                e.session_key,
                e.view_seconds,
                e.view_progress,
                e.view_max_progress,
                e.view_rewatch,
                e.last_sequence,
            ]
            for movie_id, e in features.watch_history.items()
        ],
        "tw": features.total_watch_seconds,
        "vc": features.view_count,
        "cc": features.completed_count,
        "r": [
            [ref(movie_id), e.rating, e.sequence, _us(e.rated_at)]
            for movie_id, e in features.ratings.items()
        ],
        "hr": [ref(movie_id) for movie_id in features.high_rated],
        "f": [[ref(movie_id), e.added, e.sequence] for movie_id, e in features.favorites.items()],
        "s": [[e.query, _us(e.at)] for e in features.searches],
        "k": features.keywords,
        "d": features.devices,
        "q": features.qualities,
        "g": features.genre_affinity,
        "hl": features.half_life_days,
        # seen: index deltas (mostly 1: seen movies tend to be new ids at the end of the
        # table) and the flags as one digit each; both compress to almost nothing.
        "sn": _deltas([ref(movie_id) for movie_id in features.seen]),
        "sf": "".join(map(str, features.seen.values())),
    }
    body = orjson.dumps(document)
    raw = len(body).to_bytes(4, "big") + body + bytes(table)
    return bytes((FORMAT_VERSION,)) + zlib.compress(raw, _ZLIB_LEVEL)


def decode(data: bytes) -> UserFeatures:
    """The features ``encode`` wrote; ValueError for anything else."""
    if not data or data[0] != FORMAT_VERSION:
        raise ValueError("not an encoding of user features (unknown format version)")
    try:
        raw = zlib.decompress(data[1:])
    except zlib.error as exc:
        raise ValueError(f"corrupt feature encoding: {exc}") from None
    if len(raw) < 4:
        raise ValueError("corrupt feature encoding: truncated")
    size = int.from_bytes(raw[:4], "big")
    table = raw[4 + size :]
    if len(table) % 16 or not table:
        raise ValueError("corrupt feature encoding: id table")
    try:
        return _from_document(orjson.loads(raw[4 : 4 + size]), table)
    except (KeyError, IndexError, TypeError, ValueError) as exc:
        raise ValueError(f"corrupt feature encoding: {exc!r}") from None


def _from_document(doc: dict[str, Any], table: bytes) -> UserFeatures:
    ids = [UUID(bytes=table[i : i + 16]) for i in range(0, len(table), 16)]
    return UserFeatures(
        user_id=ids[0],
        version=doc["v"],
        watermark=doc["w"],
        dead_lettered=set(doc["dl"]),
        created_at=_opt_at(doc["ca"]),
        last_activity_at=_opt_at(doc["la"]),
        total_interactions=doc["ti"],
        counts=doc["n"],
        watch_history=OrderedDict(
            (
                ids[h[0]],
                WatchEntry(
                    progress=h[1],
                    completed=h[2],
                    views=h[3],
                    rewatches=h[4],
                    watch_seconds=h[5],
                    last_watched_at=_at(h[6]),
                    session_key=h[7],
                    view_seconds=h[8],
                    view_progress=h[9],
                    view_max_progress=h[10],
                    view_rewatch=h[11],
                    last_sequence=h[12],
                ),
            )
            for h in doc["h"]
        ),
        total_watch_seconds=doc["tw"],
        view_count=doc["vc"],
        completed_count=doc["cc"],
        ratings=OrderedDict((ids[r[0]], RatingEntry(r[1], r[2], _at(r[3]))) for r in doc["r"]),
        high_rated=[ids[i] for i in doc["hr"]],
        favorites=OrderedDict((ids[f[0]], FavoriteEntry(f[1], f[2])) for f in doc["f"]),
        searches=[SearchEntry(s[0], _at(s[1])) for s in doc["s"]],
        keywords=doc["k"],
        devices=doc["d"],
        qualities=doc["q"],
        genre_affinity=doc["g"],
        half_life_days=doc["hl"],
        seen=OrderedDict(
            zip([ids[i] for i in _undeltas(doc["sn"])], map(int, doc["sf"]), strict=True)
        ),
    )


def _deltas(values: list[int]) -> list[int]:
    return [b - a for a, b in zip([0, *values], values, strict=False)]


def _undeltas(deltas: list[int]) -> list[int]:
    values: list[int] = []
    total = 0
    for delta in deltas:
        total += delta
        values.append(total)
    return values
