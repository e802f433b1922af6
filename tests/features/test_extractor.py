"""The pure feature extraction: hand-computed cases per rule, and a property test that building
incrementally (batches, redeliveries, encode/decode between batches) equals a rebuild."""

from __future__ import annotations

import copy
import math
import random
import time
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from interaction_recommender.catalog.movie import CatalogMovie
from interaction_recommender.events.messages import EventMessage
from interaction_recommender.events.schemas import EventType
from interaction_recommender.features.codec import decode, encode
from interaction_recommender.features.document import feature_document
from interaction_recommender.features.extractor import (
    apply_events,
    build_features,
    mark_dead_lettered,
)
from interaction_recommender.features.state import (
    DEFAULT_CONFIG,
    REFERENCE_INSTANT,
    SEEN_COMPLETED,
    SEEN_RATED,
    FeatureConfig,
    UserFeatures,
    genre_affinity_at,
    new_features,
)

USER = UUID("550e8400-e29b-41d4-a716-446655440000")
OTHER_USER = UUID("550e8400-e29b-41d4-a716-4466554400ff")
T0 = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)
HALF_LIFE = timedelta(days=DEFAULT_CONFIG.half_life_days)

Pair = tuple[EventMessage, CatalogMovie | None]


def mid(n: int) -> UUID:
    return UUID(int=(0xABCD << 96) + n)


def catalog_movie(
    movie_id: UUID, genres: Sequence[str] = ("Drama",), minutes: int | None = 100
) -> CatalogMovie:
    return CatalogMovie(
        movie_id=movie_id,
        title=None,
        genres=tuple(genres),
        release_year=None,
        release_date=None,
        duration_minutes=minutes,
        minimum_age=None,
        country=None,
        available=True,
        tags=(),
        source="api",
        updated_at=T0,
    )


def message(
    sequence: int,
    kind: str,
    movie_id: UUID | None,
    at: datetime,
    metadata: dict[str, Any],
    *,
    user_id: UUID = USER,
) -> EventMessage:
    return EventMessage(
        schema_version=1,
        event_id=UUID(int=(0xE0 << 120) + sequence),
        sequence=sequence,
        request_id=UUID(int=(0xF0 << 120) + sequence),
        event_type=EventType(kind),
        user_id=user_id,
        movie_id=movie_id,
        client_timestamp=at,
        server_timestamp=at + timedelta(seconds=1),
        metadata=metadata,
    )


class Stream:
    """Builds one user's events with increasing sequence numbers."""

    def __init__(self, start: int = 1) -> None:
        self.sequence = start - 1
        self.pairs: list[Pair] = []

    def _add(
        self, kind: str, movie: CatalogMovie | UUID | None, at: datetime, metadata: dict[str, Any]
    ) -> Pair:
        self.sequence += 1
        movie_id = movie.movie_id if isinstance(movie, CatalogMovie) else movie
        catalog = movie if isinstance(movie, CatalogMovie) else None
        pair = (message(self.sequence, kind, movie_id, at, metadata), catalog)
        self.pairs.append(pair)
        return pair

    def watch(self, movie: CatalogMovie | UUID, at: datetime, **metadata: Any) -> Pair:
        return self._add("watch", movie, at, metadata)

    def rate(self, movie: CatalogMovie | UUID, at: datetime, **metadata: Any) -> Pair:
        return self._add("rating", movie, at, metadata)

    def favorite(self, movie: CatalogMovie | UUID, at: datetime, **metadata: Any) -> Pair:
        return self._add("favorite", movie, at, metadata)

    def search(self, query: Any, at: datetime, **metadata: Any) -> Pair:
        return self._add("search", None, at, {"query": query, **metadata})


def build(pairs: Sequence[Pair], config: FeatureConfig = DEFAULT_CONFIG) -> UserFeatures:
    return build_features(USER, pairs, config)


def minutes(n: float) -> timedelta:
    return timedelta(minutes=n)


def session_heartbeats(
    stream: Stream,
    movie: CatalogMovie,
    start: datetime,
    session: str | None,
    checkpoints: Sequence[float] = (5.0, 25.0, 50.0, 75.0, 95.0),
) -> None:
    assert movie.duration_minutes is not None
    length = movie.duration_minutes * 60
    for i, progress in enumerate(checkpoints):
        metadata: dict[str, Any] = {
            "progressPercent": progress,
            "watchDuration": int(length * progress / 100),
        }
        if session is not None:
            metadata["sessionId"] = session
        stream.watch(movie, start + minutes(10 * i), **metadata)


# --- watch heartbeats --------------------------------------------------------------------------
def test_heartbeats_of_one_view_are_one_view() -> None:
    movie = catalog_movie(mid(1), minutes=100)
    stream = Stream()
    session_heartbeats(stream, movie, T0, "s-1")
    features = build(stream.pairs)

    entry = features.watch_history[movie.movie_id]
    assert entry.views == 1
    assert entry.rewatches == 0
    assert entry.progress == 95.0
    assert entry.completed
    assert entry.watch_seconds == 5700  # the max reported (95 % of 6000 s), not the sum
    assert features.total_watch_seconds == 5700
    assert features.view_count == 1
    assert features.completed_count == 1
    assert features.avg_watch_seconds == 5700.0
    assert features.seen[movie.movie_id] == SEEN_COMPLETED
    assert features.counts["watch"] == 5
    assert features.total_interactions == 5
    assert entry.last_watched_at == T0 + minutes(40)


def test_a_new_session_id_is_a_new_view_and_a_rewatch_is_visible() -> None:
    movie = catalog_movie(mid(1), minutes=100)
    stream = Stream()
    session_heartbeats(stream, movie, T0, "s-1")
    session_heartbeats(stream, movie, T0 + timedelta(days=3), "s-2", checkpoints=(5.0, 50.0))
    features = build(stream.pairs)

    entry = features.watch_history[movie.movie_id]
    assert entry.views == 2
    assert entry.rewatches == 1  # the second view started on a completed movie
    assert entry.watch_seconds == 5700 + 3000
    assert features.total_watch_seconds == 8700
    assert features.view_count == 2
    assert features.completed_count == 1
    assert entry.progress == 95.0  # the best over all views
    assert entry.view_max_progress == 50.0  # the current view
    assert features.avg_watch_seconds == 4350.0
    document = feature_document(features)
    assert document["watchHistory"][0]["views"] == 2
    assert document["watchHistory"][0]["rewatches"] == 1


def test_a_rewatch_counts_even_after_the_movie_left_the_history() -> None:
    config = replace(DEFAULT_CONFIG, history_size=1)
    first, other = catalog_movie(mid(1)), catalog_movie(mid(2))
    stream = Stream()
    session_heartbeats(stream, first, T0, "a", checkpoints=(95.0,))
    session_heartbeats(stream, other, T0 + minutes(200), "b", checkpoints=(10.0,))
    session_heartbeats(stream, first, T0 + minutes(400), "c", checkpoints=(10.0,))
    features = build(stream.pairs, config)
    assert list(features.watch_history) == [first.movie_id]
    assert features.watch_history[first.movie_id].rewatches == 1  # known from `seen`


def test_without_session_id_gap_and_restart_start_new_views() -> None:
    movie = catalog_movie(mid(1), minutes=100)
    stream = Stream()
    stream.watch(movie, T0, progressPercent=10.0, watchDuration=600)
    stream.watch(movie, T0 + minutes(30), progressPercent=40.0, watchDuration=2400)
    stream.watch(movie, T0 + minutes(40), progressPercent=32.0, watchDuration=2500)  # -8: same
    features = build(stream.pairs)
    assert features.watch_history[movie.movie_id].views == 1
    assert features.total_watch_seconds == 2500

    stream.watch(movie, T0 + minutes(50), progressPercent=5.0, watchDuration=300)  # -27: restart
    features = build(stream.pairs)
    entry = features.watch_history[movie.movie_id]
    assert entry.views == 2
    assert entry.watch_seconds == 2800
    assert entry.progress == 40.0

    gap = DEFAULT_CONFIG.session_gap_s
    stream.watch(movie, T0 + minutes(50) + timedelta(seconds=gap - 1), progressPercent=6.0)
    assert build(stream.pairs).watch_history[movie.movie_id].views == 2  # within the gap
    stream.watch(movie, T0 + minutes(50) + timedelta(seconds=2 * gap), progressPercent=7.0)
    assert build(stream.pairs).watch_history[movie.movie_id].views == 3  # after the gap


def test_a_view_without_an_id_adopts_the_id_of_its_later_heartbeats() -> None:
    movie = catalog_movie(mid(1))
    stream = Stream()
    stream.watch(movie, T0, progressPercent=5.0)
    stream.watch(movie, T0 + minutes(5), progressPercent=10.0, sessionId="s")
    stream.watch(movie, T0 + minutes(10), progressPercent=20.0, sessionId="s")
    entry = build(stream.pairs).watch_history[movie.movie_id]
    assert entry.views == 1
    assert entry.session_key == "s"
    stream.watch(movie, T0 + minutes(15), progressPercent=20.0, sessionId="t")
    assert build(stream.pairs).watch_history[movie.movie_id].views == 2


def test_watch_duration_null_is_estimated_from_progress_and_length() -> None:
    known, unknown = catalog_movie(mid(1), minutes=120), catalog_movie(mid(2), minutes=None)
    stream = Stream()
    stream.watch(known, T0, sessionId="a", progressPercent=25.0)
    stream.watch(unknown, T0 + minutes(1), sessionId="b", progressPercent=25.0)
    stream.watch(mid(3), T0 + minutes(2), sessionId="c", progressPercent=25.0)  # no catalog
    features = build(stream.pairs)
    assert features.watch_history[known.movie_id].watch_seconds == 1800  # 25 % of 7200 s
    assert features.watch_history[unknown.movie_id].watch_seconds == 0
    assert features.watch_history[mid(3)].watch_seconds == 0
    assert features.total_watch_seconds == 1800


def test_watch_duration_equal_to_the_movie_length_is_not_time_watched() -> None:
    movie = catalog_movie(mid(1), minutes=100)  # 6000 s
    stream = Stream()
    stream.watch(movie, T0, sessionId="a", progressPercent=30.0, watchDuration=6000)
    stream.watch(movie, T0 + minutes(10), sessionId="a", progressPercent=40.0, watchDuration=5950)
    features = build(stream.pairs)
    assert features.watch_history[movie.movie_id].watch_seconds == 2400  # 40 % of the length
    # ... but once progress is at/after 90 %, the length is believable.
    stream.watch(movie, T0 + minutes(60), sessionId="a", progressPercent=97.0, watchDuration=6000)
    features = build(stream.pairs)
    assert features.watch_history[movie.movie_id].watch_seconds == 6000
    assert features.total_watch_seconds == 6000
    # Without a known length, the value is taken as sent.
    stream.watch(mid(9), T0 + minutes(70), sessionId="b", progressPercent=30.0, watchDuration=6000)
    assert build(stream.pairs).watch_history[mid(9)].watch_seconds == 6000


def test_watch_seconds_grow_by_the_increase_only() -> None:
    movie = catalog_movie(mid(1), minutes=100)
    stream = Stream()
    stream.watch(movie, T0, sessionId="a", progressPercent=10.0, watchDuration=600)
    stream.watch(movie, T0 + minutes(5), sessionId="a", progressPercent=12.0, watchDuration=500)
    features = build(stream.pairs)
    assert features.watch_history[movie.movie_id].watch_seconds == 600  # a lower report: no-op
    assert features.watch_history[movie.movie_id].view_seconds == 600
    stream.watch(movie, T0 + minutes(9), sessionId="a", progressPercent=20.0, watchDuration=1200)
    features = build(stream.pairs)
    assert features.watch_history[movie.movie_id].watch_seconds == 1200
    assert features.total_watch_seconds == 1200


def test_garbage_metadata_is_ignored_not_raised() -> None:
    movie = catalog_movie(mid(1))
    stream = Stream()
    stream.watch(movie, T0, progressPercent="half", watchDuration=-5, device=7, sessionId=True)
    stream.watch(movie, T0, progressPercent=float("nan"), watchDuration=10**400, quality=[1])
    stream.watch(movie, T0, progressPercent=250, watchDuration=True)
    stream.rate(movie, T0, rating=9.5)
    stream.rate(movie, T0, rating="5")
    stream.favorite(movie, T0, action="toggle")
    stream.search("   ", T0)
    stream.search(None, T0)
    features = build(stream.pairs)
    assert features.total_interactions == 8
    assert features.watch_history[movie.movie_id].progress == 100.0  # 250 clamped
    assert features.ratings == {}
    assert features.favorites == {}
    assert features.searches == []
    assert features.devices == {}
    assert features.qualities == {}
    assert features.total_watch_seconds == 6000  # estimated from the clamped progress
    orjson.dumps(feature_document(features))


# --- ratings and favorites ---------------------------------------------------------------------
def test_ratings_latest_by_sequence_wins_including_edits() -> None:
    a, b = catalog_movie(mid(1)), catalog_movie(mid(2))
    stream = Stream()
    stream.rate(a, T0, rating=4.0)
    stream.rate(b, T0 + minutes(1), rating=5.0)
    stream.rate(a, T0 + minutes(2), rating=2.0, previousRating=4.0)  # an edited review
    stream.rate(b, T0 + minutes(3))  # no rating: counted, nothing else
    features = build(stream.pairs)
    assert {m: e.rating for m, e in features.ratings.items()} == {a.movie_id: 2.0, b.movie_id: 5.0}
    assert features.avg_rating == 3.5
    assert features.rating_count == 2
    assert features.high_rated == [b.movie_id]
    assert features.counts["rating"] == 4
    assert features.seen[a.movie_id] == SEEN_RATED
    document = feature_document(features)
    assert document["avgRating"] == 3.5
    assert document["highRated"] == [b.movie_id]


def test_an_old_rating_replayed_late_does_not_overwrite_a_newer_one() -> None:
    a = catalog_movie(mid(1), genres=("Drama",))
    stream = Stream()
    stream.rate(a, T0, rating=5.0)  # 1
    late = stream.rate(a, T0 + minutes(1), rating=1.0)  # 2: dead-lettered at first
    newest = stream.rate(a, T0 + minutes(2), rating=3.5)  # 3
    features, _ = apply_events(new_features(USER), [stream.pairs[0]])
    features = mark_dead_lettered(features, 2)
    features, _ = apply_events(features, [newest])
    assert features.watermark == 3
    features, applied = apply_events(features, [late])  # the replay
    assert applied == [late[0]]
    assert features.ratings[a.movie_id].rating == 3.5
    assert features.ratings[a.movie_id].sequence == 3
    assert features.counts["rating"] == 3
    # The genre score is that of the kept rating only: (3.5 - 3) / 2, decayed from T0 + 2 min.
    now = T0 + minutes(2)
    assert genre_affinity_at(features, now)["Drama"] == pytest.approx(0.25, abs=1e-12)


def test_avg_rating_is_zero_without_ratings_and_a_float() -> None:
    document = feature_document(new_features(USER))
    assert document["avgRating"] == 0.0
    assert isinstance(document["avgRating"], float)
    assert document["totalInteractions"] == 0
    assert isinstance(document["totalInteractions"], int)
    assert document["genreAffinity"] == {}
    orjson.dumps(document)


def test_favorites_add_and_remove() -> None:
    a, b, c = (catalog_movie(mid(i), genres=("Comedy",)) for i in (1, 2, 3))
    stream = Stream()
    stream.favorite(a, T0, action="add", listId="favorites")
    stream.favorite(b, T0, action="add")
    stream.favorite(c, T0)  # no action: an add
    stream.favorite(a, T0, action="remove")
    stream.favorite(b, T0, action="ADD")  # already added: no second contribution
    features = build(stream.pairs)
    assert features.favorite_list == [b.movie_id, c.movie_id]  # most recently changed first
    assert features.favorites[a.movie_id].added is False
    # +1 (a) +1 (b) +1 (c) -1 (a removed); b's repeated add contributes nothing.
    assert genre_affinity_at(features, T0)["Comedy"] == pytest.approx(2.0, abs=1e-12)
    assert feature_document(features)["favorites"] == [b.movie_id, c.movie_id]

    # A removal of a movie never seen added still counts against its genres.
    stream.favorite(catalog_movie(mid(4), genres=("Horror",)), T0, action="remove")
    assert genre_affinity_at(build(stream.pairs), T0)["Horror"] == pytest.approx(-1.0)


def test_favorites_keep_added_ones_over_removed_ones_when_full() -> None:
    config = replace(DEFAULT_CONFIG, favorites_cap=2)
    stream = Stream()
    stream.favorite(mid(1), T0, action="add")
    stream.favorite(mid(2), T0, action="remove")
    stream.favorite(mid(3), T0, action="add")
    features = build(stream.pairs, config)
    assert list(features.favorites) == [mid(1), mid(3)]
    stream.favorite(mid(4), T0, action="add")
    assert list(build(stream.pairs, config).favorites) == [mid(3), mid(4)]


# --- bounds -------------------------------------------------------------------------------------
def test_history_is_bounded_to_the_most_recent_movies() -> None:
    config = replace(DEFAULT_CONFIG, history_size=3)
    stream = Stream()
    for i in range(5):
        stream.watch(mid(i), T0 + minutes(i), sessionId=f"s{i}", progressPercent=50.0)
    stream.watch(mid(2), T0 + minutes(10), sessionId="s2", progressPercent=60.0)  # touched again
    features = build(stream.pairs, config)
    assert list(features.watch_history) == [mid(3), mid(4), mid(2)]  # least recent first
    history = feature_document(features)["watchHistory"]
    assert [h["movieId"] for h in history] == [mid(2), mid(4), mid(3)]  # most recent first


def test_default_history_keeps_200_movies() -> None:
    stream = Stream()
    for i in range(230):
        stream.watch(mid(i), T0 + minutes(i), progressPercent=50.0)
    features = build(stream.pairs)
    assert len(features.watch_history) == 200
    assert next(iter(features.watch_history)) == mid(30)


def test_searches_and_keywords_are_bounded() -> None:
    config = replace(DEFAULT_CONFIG, searches_kept=2, keywords_cap=3)
    stream = Stream()
    stream.search("The Dark Knight", T0)
    stream.search("dark city", T0 + minutes(2))
    stream.search("a b Knight's tale!", T0 + minutes(1))  # earlier client time: sorted in
    stream.search("Dark", T0 + minutes(3))
    features = build(stream.pairs, config)
    assert [(s.query, s.at) for s in features.searches] == [
        ("dark city", T0 + minutes(2)),
        ("Dark", T0 + minutes(3)),
    ]
    # "the" is a stop word, "a", "b" and "s" are too short. When "tale" arrived, the map was
    # full ({dark: 2, knight: 1 -> 2, city: 1}): the least frequent other keyword, "city", went.
    assert features.keywords == {"dark": 3, "knight": 2, "tale": 1}
    document = feature_document(features)
    assert document["recentSearches"][0] == {"query": "Dark", "at": T0 + minutes(3)}
    assert document["topKeywords"][0] == {"keyword": "dark", "count": 3}


def test_default_searches_keep_50() -> None:
    stream = Stream()
    for i in range(60):
        stream.search(f"query {i}", T0 + minutes(i))
    features = build(stream.pairs)
    assert len(features.searches) == 50
    assert features.searches[0].query == "query 10"


def test_seen_is_capped_dropping_the_least_recently_marked() -> None:
    config = replace(DEFAULT_CONFIG, seen_cap=3)
    stream = Stream()
    for i in range(4):
        stream.watch(mid(i), T0 + minutes(i), sessionId=f"s{i}", progressPercent=95.0)
    stream.rate(mid(1), T0 + minutes(9), rating=4.0)  # marks mid(1) again: most recent
    stream.watch(mid(9), T0 + minutes(10), sessionId="x", progressPercent=50.0)  # not completed
    stream.watch(mid(5), T0 + minutes(11), sessionId="y", progressPercent=100.0)
    features = build(stream.pairs, config)
    assert list(features.seen) == [mid(3), mid(1), mid(5)]
    assert features.seen[mid(1)] == SEEN_COMPLETED | SEEN_RATED
    assert features.seen_count == 3
    assert mid(9) not in features.seen


def test_ratings_cap_drops_the_oldest_and_its_high_rated_entry() -> None:
    config = replace(DEFAULT_CONFIG, ratings_cap=2)
    stream = Stream()
    stream.rate(mid(1), T0, rating=5.0)
    stream.rate(mid(2), T0, rating=4.5)
    stream.rate(mid(3), T0, rating=1.0)
    features = build(stream.pairs, config)
    assert list(features.ratings) == [mid(2), mid(3)]
    assert features.high_rated == [mid(2)]
    assert features.avg_rating == 2.75


def test_devices_and_qualities_are_counted_and_bounded() -> None:
    config = replace(DEFAULT_CONFIG, device_cap=2)
    stream = Stream()
    for device in ("Web", "web", "tv", "tv", "tv", "mobile"):
        stream.watch(mid(1), T0, device=device, quality="1080p")
    features = build(stream.pairs, config)
    assert features.devices == {"tv": 3, "mobile": 1}  # "web" (2) was the least frequent
    assert features.qualities == {"1080p": 6}


# --- genre affinity ----------------------------------------------------------------------------
def test_genre_affinity_is_stored_against_a_fixed_reference() -> None:
    movie = catalog_movie(mid(1), genres=("Drama", "War"))
    stream = Stream()
    session_heartbeats(stream, movie, T0, "s", checkpoints=(95.0,))
    features = build(stream.pairs)
    expected = 2.0 ** ((T0 - REFERENCE_INSTANT) / HALF_LIFE)
    assert features.genre_affinity == {"Drama": expected, "War": expected}
    # Computing it later (another process, another day) stores exactly the same value.
    again, _ = apply_events(new_features(USER), stream.pairs)
    assert again.genre_affinity == features.genre_affinity

    # genre_affinity_at decays by half per half-life.
    assert genre_affinity_at(features, T0)["Drama"] == pytest.approx(1.0, rel=1e-12)
    assert genre_affinity_at(features, T0 + HALF_LIFE)["Drama"] == pytest.approx(0.5, rel=1e-12)
    assert genre_affinity_at(features, T0 + 2 * HALF_LIFE)["War"] == pytest.approx(0.25, rel=1e-12)
    document = feature_document(features, now=T0 + HALF_LIFE)
    assert document["genreAffinity"]["Drama"] == pytest.approx(0.5, rel=1e-12)
    assert feature_document(features)["genreAffinity"]["Drama"] == pytest.approx(1.0)


def test_genre_contributions_are_additive_and_commutative() -> None:
    drama = catalog_movie(mid(1), genres=("Drama",))
    other = catalog_movie(mid(2), genres=("Drama",))
    early, late = T0, T0 + timedelta(days=45)
    one = Stream()
    one.rate(drama, early, rating=5.0)
    one.rate(other, late, rating=4.0)
    two = Stream()
    two.rate(other, late, rating=4.0)
    two.rate(drama, early, rating=5.0)
    a, b = build(one.pairs), build(two.pairs)
    assert a.genre_affinity == b.genre_affinity  # exactly: same value whatever the order
    # Decayed to `late`: 1.0 * 2^(-1.5) + 0.5.
    value = genre_affinity_at(a, late)["Drama"]
    assert value == pytest.approx(2.0**-1.5 + 0.5, rel=1e-12)


def test_watch_contributions_follow_progress() -> None:
    movies = {p: catalog_movie(mid(int(p)), genres=(f"G{int(p)}",)) for p in (10.0, 60.0, 95.0)}
    stream = Stream()
    for progress, movie in movies.items():
        session_heartbeats(stream, movie, T0, f"s{progress}", checkpoints=(5.0, progress))
    features = build(stream.pairs)
    # (Each heartbeat adds the change of the view's weight at its own time: 10 minutes of decay
    # between the first and the last are far below this tolerance.)
    scores = genre_affinity_at(features, T0 + minutes(10))
    assert scores["G10"] == pytest.approx(-0.25, rel=1e-3)  # abandoned early
    assert scores["G60"] == pytest.approx(0.60, rel=1e-3)  # partial
    assert scores["G95"] == pytest.approx(1.0, rel=1e-3)  # completed
    # A rewatch abandoned early is not held against the genre.
    session_heartbeats(stream, movies[95.0], T0 + minutes(10), "again", checkpoints=(5.0,))
    rewatched = genre_affinity_at(build(stream.pairs), T0 + minutes(10))
    assert rewatched["G95"] == scores["G95"]


def test_genre_map_is_bounded() -> None:
    config = replace(DEFAULT_CONFIG, genre_cap=2)
    stream = Stream()
    stream.rate(catalog_movie(mid(1), genres=("A",)), T0, rating=5.0)
    stream.rate(catalog_movie(mid(2), genres=("B",)), T0, rating=3.5)
    stream.rate(catalog_movie(mid(3), genres=("C",)), T0, rating=4.0)
    assert set(build(stream.pairs, config).genre_affinity) == {"A", "C"}


def test_far_timestamps_do_not_overflow() -> None:
    config = replace(DEFAULT_CONFIG, half_life_days=1.0)
    stream = Stream()
    stream.rate(catalog_movie(mid(1), genres=("A",)), datetime(1970, 1, 1, tzinfo=UTC), rating=5)
    stream.rate(catalog_movie(mid(2), genres=("A",)), datetime(2099, 12, 31, tzinfo=UTC), rating=5)
    features = build(stream.pairs, config)
    assert features.half_life_days == 1.0
    assert all(math.isfinite(v) for v in features.genre_affinity.values())
    scores = genre_affinity_at(features, datetime(2099, 12, 31, tzinfo=UTC))
    assert all(math.isfinite(v) for v in scores.values())
    assert decode(encode(features)) == features


# --- delivery: duplicates, dead letters, versions -----------------------------------------------
def test_events_at_or_below_the_watermark_are_skipped() -> None:
    stream = Stream()
    stream.watch(mid(1), T0, progressPercent=10.0)
    stream.rate(mid(1), T0, rating=4.0)
    first, applied = apply_events(new_features(USER), stream.pairs)
    assert applied == [p[0] for p in stream.pairs]
    assert (first.version, first.watermark) == (1, 2)
    again, applied = apply_events(first, stream.pairs)  # redelivered
    assert applied == []
    assert again is first
    assert again.version == 1
    stream.search("more", T0)
    third, applied = apply_events(first, stream.pairs)  # s1..s3: only s3 is new
    assert applied == [stream.pairs[2][0]]
    assert (third.version, third.watermark, third.total_interactions) == (2, 3, 3)


def test_a_dead_lettered_event_is_applied_exactly_once_when_replayed() -> None:
    stream = Stream()
    stream.watch(mid(1), T0, progressPercent=10.0)
    poison = stream.rate(mid(1), T0, rating=4.0)
    stream.search("later", T0)
    features, _ = apply_events(new_features(USER), [stream.pairs[0]])
    marked = mark_dead_lettered(features, poison[0].sequence)
    assert marked.dead_lettered == {2}
    assert (marked.watermark, marked.version) == (2, 2)
    assert mark_dead_lettered(marked, 2) is marked  # already recorded
    features, applied = apply_events(marked, [stream.pairs[2]])  # later events still apply
    assert applied == [stream.pairs[2][0]]

    replayed, applied = apply_events(features, [poison])
    assert applied == [poison[0]]
    assert replayed.dead_lettered == set()
    assert replayed.ratings[mid(1)].rating == 4.0
    assert replayed.watermark == 3
    assert replayed.version == features.version + 1
    twice, applied = apply_events(replayed, [poison, poison])
    assert applied == []
    assert twice is replayed
    # Same content as if nothing had gone wrong.
    assert replace(replayed, version=0) == replace(build(stream.pairs), version=0)


def test_a_duplicate_inside_one_batch_applies_once() -> None:
    stream = Stream()
    pair = stream.rate(mid(1), T0, rating=4.0)
    features, applied = apply_events(new_features(USER), [pair, pair, pair])
    assert applied == [pair[0]]
    assert features.counts["rating"] == 1


def test_replay_mode_applies_only_dead_lettered_events() -> None:
    stream = Stream()
    stream.watch(mid(1), T0, progressPercent=10.0)
    poison = stream.rate(mid(1), T0, rating=4.0)
    features = mark_dead_lettered(apply_events(new_features(USER), stream.pairs[:1])[0], 2)
    fresh = stream.search("not seen by the consumer yet", T0)
    replayed, applied = apply_events(features, [poison, fresh], replay=True)
    assert applied == [poison[0]]
    assert replayed.watermark == 2  # not moved past the unseen event


def test_dead_letters_are_bounded() -> None:
    config = replace(DEFAULT_CONFIG, dead_letter_cap=2)
    features = new_features(USER)
    for sequence in (5, 3, 9):
        features = mark_dead_lettered(features, sequence, config)
    assert features.dead_lettered == {5, 9}
    assert features.watermark == 9
    assert features.version == 3


def test_version_increases_by_one_per_call_that_applied_something() -> None:
    stream = Stream()
    for i in range(6):
        stream.watch(mid(i), T0, progressPercent=10.0)
    features = new_features(USER)
    for batch in (stream.pairs[:3], stream.pairs[:3], stream.pairs[3:], []):
        features, _ = apply_events(features, batch)
    assert features.version == 2
    assert build(stream.pairs).version == 1
    assert build([]).version == 0


def test_events_of_another_user_raise_before_anything_applies() -> None:
    stream = Stream()
    stream.watch(mid(1), T0, progressPercent=10.0)
    stranger = (message(99, "watch", mid(2), T0, {}, user_id=OTHER_USER), None)
    start = new_features(USER)
    with pytest.raises(ValueError, match="another user"):
        apply_events(start, [stream.pairs[0], stranger])
    assert start == new_features(USER)


def test_build_features_sorts_by_sequence() -> None:
    stream = Stream()
    stream.rate(mid(1), T0, rating=2.0)
    stream.rate(mid(1), T0 - minutes(5), rating=4.5)  # later sequence, earlier client time
    features = build(list(reversed(stream.pairs)))
    assert features.ratings[mid(1)].rating == 4.5
    assert features.created_at == T0 - minutes(5)
    assert features.last_activity_at == T0


def test_no_function_mutates_its_input() -> None:
    movie = catalog_movie(mid(1), genres=("Drama",))
    stream = Stream()
    session_heartbeats(stream, movie, T0, "s")
    stream.rate(movie, T0, rating=5.0)
    stream.favorite(movie, T0, action="add")
    stream.search("drama night", T0)
    base = build(stream.pairs[:3])
    snapshot = copy.deepcopy(base)
    later = Stream(start=stream.sequence + 1)
    session_heartbeats(later, movie, T0 + timedelta(days=2), "t")
    later.rate(movie, T0 + timedelta(days=2), rating=1.0)
    later.favorite(movie, T0 + timedelta(days=2), action="remove")
    later.search("another drama", T0)

    result, _ = apply_events(base, stream.pairs[3:] + later.pairs)
    assert base == snapshot
    assert result != base
    marked = mark_dead_lettered(base, 100)
    assert base == snapshot
    assert marked.dead_lettered == {100}
    feature_document(base, now=T0)
    encode(base)
    genre_affinity_at(base, T0)
    assert base == snapshot
    # The result shares no mutable container with the input.
    for name in UserFeatures.__dataclass_fields__:
        value = getattr(result, name)
        if isinstance(value, dict | list | set):
            assert value is not getattr(base, name), name


# --- the document and the encoding -------------------------------------------------------------
def test_feature_document_shape() -> None:
    movie = catalog_movie(mid(1), genres=("Drama",))
    stream = Stream()
    session_heartbeats(stream, movie, T0, "s")
    stream.rate(movie, T0 + minutes(60), rating=4.5)
    stream.search("drama", T0 + minutes(61))
    stream.watch(movie, T0 + minutes(62), device="TV", quality="4K", sessionId="s")
    document = feature_document(build(stream.pairs))
    assert document["totalInteractions"] == 8
    assert document["counts"] == {"watch": 6, "search": 1, "rating": 1, "favorite": 0}
    assert document["ratingCount"] == 1
    assert document["avgRating"] == 4.5
    assert document["completedCount"] == 1
    assert document["totalWatchSeconds"] == 5700
    assert document["avgWatchSeconds"] == 5700.0
    assert document["seenCount"] == 1
    assert document["devices"] == {"tv": 1}
    assert document["qualities"] == {"4k": 1}
    assert document["createdAt"] == T0
    assert document["lastActivityAt"] == T0 + minutes(62)
    assert document["watchHistory"] == [
        {
            "movieId": movie.movie_id,
            "progress": 95.0,
            "completed": True,
            "views": 1,
            "rewatches": 0,
            "watchSeconds": 5700,
            "lastWatchedAt": T0 + minutes(62),
        }
    ]
    text = orjson.dumps(document, option=orjson.OPT_UTC_Z)
    assert b'"createdAt":"2025-01-01T12:00:00Z"' in text
    assert isinstance(orjson.loads(text)["totalInteractions"], int)


def test_encode_round_trips_and_decode_refuses_garbage() -> None:
    movie = catalog_movie(mid(1))
    stream = Stream()
    session_heartbeats(stream, movie, T0, "s")
    stream.rate(movie, T0, rating=3.7)
    stream.favorite(movie, T0, action="remove")
    stream.search("x-files: I want to believe", T0)
    features = mark_dead_lettered(build(stream.pairs), 42)
    data = encode(features)
    assert data[0] == 1
    assert decode(data) == features
    assert encode(decode(data)) == data
    for bad in (b"", b"\x02" + data[1:], data[:1] + b"not zlib", data[:-5]):
        with pytest.raises(ValueError, match=r"format|corrupt"):
            decode(bad)


def heavy_user(completion: float, seed: int = 7) -> tuple[list[Pair], UserFeatures]:
    """10,000 watch events over 6,000 distinct movies."""
    rng = random.Random(seed)
    genres = [f"Genre{i}" for i in range(25)]
    movies = [  # random (version 4) ids: they do not compress
        catalog_movie(
            UUID(int=rng.getrandbits(128), version=4),
            genres=rng.sample(genres, 2),
            minutes=rng.randint(80, 180),
        )
        for _ in range(6000)
    ]
    order = list(range(6000)) + [rng.randrange(6000) for _ in range(4000)]
    stream = Stream()
    for n, index in enumerate(order):
        progress = 100.0 if rng.random() < completion else round(rng.uniform(1, 89), 1)
        stream.watch(
            movies[index],
            T0 + minutes(n * 30),
            sessionId=f"s{n}",
            progressPercent=progress,
            watchDuration=int(progress * 60),
            device=rng.choice(["web", "tv", "mobile"]),
            quality=rng.choice(["720p", "1080p", "4k"]),
        )
    return stream.pairs, build(stream.pairs)


def test_encoding_of_a_heavy_user_is_compact() -> None:
    _, features = heavy_user(completion=1.0)
    started = time.perf_counter()
    data = encode(features)
    encode_s = time.perf_counter() - started
    assert features.total_interactions == 10_000
    assert len(features.seen) == 5000  # capped
    assert len(features.watch_history) == 200
    print(f"\nencode(): {len(data)} bytes, {encode_s * 1000:.1f} ms (every movie completed)")
    assert len(data) < 16 * 5000 + 20_000  # the seen ids dominate: 16 raw bytes each
    assert decode(data) == features


# --- the property: incremental == rebuild --------------------------------------------------------
GENRES = ("Action", "Drama", "Comedy", "Horror", "Sci-Fi")
SMALL = FeatureConfig(
    history_size=3,
    seen_cap=3,
    ratings_cap=3,
    favorites_cap=2,
    searches_kept=3,
    keywords_cap=4,
    device_cap=2,
    genre_cap=3,
    dead_letter_cap=3,
    session_gap_s=3 * 3600,
)
WORDS = ("dark", "the", "Knight", "city", "a", "love", "LOVE", "2049", "été", "x_y")


@st.composite
def movie_pool(draw: st.DrawFn) -> list[tuple[UUID, CatalogMovie | None]]:
    pool: list[tuple[UUID, CatalogMovie | None]] = []
    for i in range(draw(st.integers(1, 5))):
        movie_id = mid(500 + i)
        if draw(st.integers(0, 4)) == 0:
            pool.append((movie_id, None))  # not in the catalog
            continue
        genres = draw(st.lists(st.sampled_from(GENRES), max_size=3, unique=True))
        length = draw(st.one_of(st.none(), st.integers(1, 200)))
        pool.append((movie_id, catalog_movie(movie_id, genres=genres, minutes=length)))
    return pool


def _maybe(draw: st.DrawFn, strategy: st.SearchStrategy[Any]) -> Any:
    return draw(st.one_of(st.none(), strategy))


@st.composite
def event_stream(draw: st.DrawFn) -> list[Pair]:
    pool = draw(movie_pool())
    pairs: list[Pair] = []
    sequence = 0
    at = T0
    for _ in range(draw(st.integers(0, 45))):
        sequence += draw(st.integers(1, 3))
        at += timedelta(minutes=draw(st.integers(-120, 600)))  # client clocks go back too
        kind = draw(st.sampled_from(("watch", "watch", "watch", "rating", "favorite", "search")))
        movie_id, movie = draw(st.sampled_from(pool))
        metadata: dict[str, Any] = {}
        if kind == "watch":
            length = (movie.duration_minutes or 90) * 60 if movie else 5400
            metadata = {
                "progressPercent": _maybe(
                    draw,
                    st.sampled_from((5.0, 25.0, 50.0, 75.0, 95.0, 100.0))
                    | st.floats(0, 100, allow_nan=False),
                ),
                "watchDuration": _maybe(
                    draw, st.integers(0, 20_000) | st.just(length) | st.just(length - 30)
                ),
                "sessionId": _maybe(draw, st.sampled_from(("s1", "s2", "s3"))),
                "device": _maybe(draw, st.sampled_from(("web", "TV", "mobile", "tablet"))),
                "quality": _maybe(draw, st.sampled_from(("720p", "1080p", "4k"))),
            }
        elif kind == "rating":
            metadata = {
                "rating": _maybe(
                    draw, st.sampled_from((0.5, 1.0, 3.0, 4.0, 5.0)) | st.floats(0.5, 5.0)
                ),
                "previousRating": _maybe(draw, st.sampled_from((2.0, 4.5))),
            }
        elif kind == "favorite":
            metadata = {
                "action": _maybe(draw, st.sampled_from(("add", "remove", "add", "bogus"))),
                "listId": _maybe(draw, st.just("favorites")),
            }
        else:
            words = draw(st.lists(st.sampled_from(WORDS), min_size=1, max_size=4))
            metadata = {"query": " ".join(words), "resultsCount": _maybe(draw, st.integers(0, 9))}
            movie_id, movie = (None, None) if draw(st.booleans()) else (movie_id, movie)
        metadata = {k: v for k, v in metadata.items() if v is not None}  # nulls are left out
        pairs.append((message(sequence, kind, movie_id, at, metadata), movie))
    return pairs


@st.composite
def deliveries(draw: st.DrawFn) -> tuple[list[Pair], list[list[Pair]], list[bool], FeatureConfig]:
    """Distinct events, and how they arrive: in sequence order, with redeliveries of earlier
    ones (single messages and re-published runs), cut into batches."""
    events = draw(event_stream())
    stream: list[Pair] = []
    for i, pair in enumerate(events):
        stream.append(pair)
        roll = draw(st.integers(0, 9))
        if roll == 0:
            stream.append(events[draw(st.integers(0, i))])  # one message delivered again
        elif roll == 1:
            start = draw(st.integers(0, i))
            stream.extend(events[start : i + 1])  # a failed publish, published again
    cuts = sorted(set(draw(st.lists(st.integers(0, len(stream)), max_size=6))))
    batches = [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True)]
    round_trips = [draw(st.booleans()) for _ in batches]
    config = draw(st.sampled_from((SMALL, DEFAULT_CONFIG)))
    return events, batches, round_trips, config


def _oracle_ratings(events: list[Pair]) -> dict[UUID, float]:
    latest: dict[UUID, float] = {}
    for event, _ in events:
        rating = event.metadata.get("rating")
        if event.event_type == EventType.RATING and event.movie_id and rating is not None:
            latest[event.movie_id] = float(rating)
    return latest


@settings(
    max_examples=200,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(deliveries())
def test_incremental_equals_rebuild(
    case: tuple[list[Pair], list[list[Pair]], list[bool], FeatureConfig],
) -> None:
    events, batches, round_trips, config = case
    features = new_features(USER)
    applied: list[EventMessage] = []
    changed_batches = 0
    for batch, round_trip in zip(batches, round_trips, strict=True):
        before = encode(features)
        after, batch_applied = apply_events(features, batch, config)
        assert encode(features) == before  # the input is untouched
        if batch_applied:
            changed_batches += 1
            assert after.version == features.version + 1
        else:
            assert after is features
        applied += batch_applied
        features = decode(encode(after)) if round_trip else after

    rebuilt = build_features(USER, reversed(events), config)  # build sorts
    assert [e.event_id for e in applied] == [e.event_id for e, _ in events]
    assert features.version == changed_batches
    assert rebuilt.version == (1 if events else 0)
    assert replace(features, version=0) == replace(rebuilt, version=0)
    assert encode(replace(features, version=0)) == encode(replace(rebuilt, version=0))
    assert decode(encode(rebuilt)) == rebuilt

    # Invariants and an independent oracle for what needs no bookkeeping.
    assert features.total_interactions == len(events) == sum(features.counts.values())
    assert features.watermark == max((e.sequence for e, _ in events), default=0)
    assert len(features.watch_history) <= config.history_size
    assert len(features.seen) <= config.seen_cap
    assert len(features.ratings) <= config.ratings_cap
    assert len(features.favorites) <= config.favorites_cap
    assert len(features.searches) <= config.searches_kept
    assert len(features.keywords) <= config.keywords_cap
    assert len(features.genre_affinity) <= config.genre_cap
    assert features.completed_count <= features.view_count
    assert [s.at for s in features.searches] == sorted(s.at for s in features.searches)
    if config is DEFAULT_CONFIG:  # nothing is evicted from a pool of five movies
        assert {m: e.rating for m, e in features.ratings.items()} == _oracle_ratings(events)
        assert features.total_watch_seconds == sum(
            e.watch_seconds for e in features.watch_history.values()
        )
        assert features.view_count == sum(e.views for e in features.watch_history.values())
    document = feature_document(features, now=T0 + timedelta(days=30))
    assert isinstance(document["totalInteractions"], int)
    assert isinstance(document["avgRating"], float)
    orjson.loads(orjson.dumps(document, option=orjson.OPT_UTC_Z))
