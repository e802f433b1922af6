"""The compact storage encoding of a user's features (the Redis value and the snapshot row):
``decode(encode(f)) == f`` exactly."""

from __future__ import annotations

import zlib
from collections import OrderedDict
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import orjson

from interaction_recommender.features.state import (
    FavoriteEntry,
    RatingEntry,
    SearchEntry,
    UserFeatures,
    WatchEntry,
    aware,
)

__all__ = ["FORMAT_VERSION", "decode", "encode"]

FORMAT_VERSION = 1
"""First byte of ``encode``'s output; ``decode`` refuses any other."""

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_ZLIB_LEVEL = 1  # fastest: level 6 cost 17% of the worker for a few % smaller values


def _us(value: datetime) -> int:
    return (aware(value) - _EPOCH) // _MICROSECOND


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
