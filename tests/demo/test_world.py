"""The synthetic demo world: deterministic, valid on the wire, realistic, with tastes to learn."""

from __future__ import annotations

import hashlib
import os
import statistics
import subprocess
import sys
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from interaction_recommender.catalog.schemas import MovieBatchItem
from interaction_recommender.demo import (
    DEFAULT_END,
    GENRES,
    TASTES,
    World,
    generate_world,
    iter_world_lines,
    read_world,
    write_world,
)
from interaction_recommender.events.schemas import MODEL_BY_TYPE, EventType

HALF_STARS = {n / 2 for n in range(1, 11)}


def _bytes(world: World) -> bytes:
    return b"".join(iter_world_lines(world))


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text)


@pytest.fixture(scope="module")
def world() -> World:
    return generate_world()


@pytest.fixture(scope="module")
def movies(world: World) -> dict[str, dict[str, Any]]:
    return {m["movieId"]: m for m in world.movies}


@pytest.fixture(scope="module")
def sessions(world: World) -> dict[str, list[dict[str, Any]]]:
    grouped: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for event in world.events:
        if event["type"] == "watch":
            grouped[event["metadata"]["sessionId"]].append(event)
    return grouped


# --- determinism ---------------------------------------------------------------------------------
def test_the_same_arguments_give_byte_identical_worlds() -> None:
    first = generate_world(11, movies=150, users=400)
    second = generate_world(11, movies=150, users=400)
    assert first == second
    assert _bytes(first) == _bytes(second)


def test_another_seed_gives_another_world() -> None:
    first = generate_world(11, movies=150, users=400)
    other = generate_world(12, movies=150, users=400)
    assert _bytes(first) != _bytes(other)
    assert {m["movieId"] for m in first.movies}.isdisjoint(m["movieId"] for m in other.movies)
    assert [m["title"] for m in first.movies] != [m["title"] for m in other.movies]


def test_the_world_does_not_depend_on_string_hashing() -> None:
    """Another process with another PYTHONHASHSEED (set iteration order) builds the same bytes."""
    here = hashlib.sha256(_bytes(generate_world(5, movies=120, users=200))).hexdigest()
    script = (
        "import hashlib\n"
        "from interaction_recommender.demo import generate_world, iter_world_lines\n"
        "w = generate_world(5, movies=120, users=200)\n"
        "print(hashlib.sha256(b''.join(iter_world_lines(w))).hexdigest())\n"
    )
    for hash_seed in ("1", "4242"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        done = subprocess.run(
            [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True
        )
        assert done.stdout.strip() == here


# --- shape ---------------------------------------------------------------------------------------
def test_default_world_size_and_time_window(world: World) -> None:
    assert len(world.movies) == 400
    assert len(world.users) == 3000
    assert 80_000 <= len(world.events) <= 150_000
    start = DEFAULT_END - timedelta(days=90)
    stamps = [e["clientTimestamp"] for e in world.events]
    assert stamps == sorted(stamps)
    assert all(s.endswith("Z") for s in stamps)
    assert start < _instant(stamps[0])
    assert _instant(stamps[-1]) <= DEFAULT_END
    assert len({e["requestId"] for e in world.events}) == len(world.events)
    users = {u.user_id for u in world.users}
    assert len(users) == 3000
    assert {e["userId"] for e in world.events} <= users


def test_another_window_is_respected() -> None:
    end = datetime(2025, 3, 15, 12, 30, tzinfo=UTC)
    small = generate_world(3, movies=80, users=150, days=10, end=end)
    stamps = [_instant(e["clientTimestamp"]) for e in small.events]
    assert small.events
    assert all(end - timedelta(days=10) < s <= end for s in stamps)
    assert all(m["releaseYear"] <= 2025 for m in small.movies)


def test_a_naive_end_is_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        generate_world(end=datetime(2026, 1, 1))  # naive on purpose


def test_every_event_validates_against_the_service_models(world: World) -> None:
    for event in world.events:
        model = MODEL_BY_TYPE[EventType(event["type"])].model_validate(event)
        assert str(model.user_id) == event["userId"]
        assert str(model.request_id) == event["requestId"]
        assert model.client_timestamp is not None
        assert model.client_timestamp.tzinfo is not None
    types = Counter(e["type"] for e in world.events)
    assert set(types) == {"watch", "search", "rating", "favorite"}
    assert types["watch"] > types["search"] > 0
    assert types["rating"] > types["favorite"] > 0


def test_every_movie_validates_and_looks_like_a_movie(world: World) -> None:
    titles = Counter(m["title"] for m in world.movies)
    assert titles.most_common(1)[0][1] == 1, "titles are unique"
    assert any(t.endswith(" II") for t in titles), "a few sequels"
    for movie in world.movies:
        item = MovieBatchItem.model_validate(movie)
        assert str(item.movie_id) == movie["movieId"]
        assert item.release_date is not None
        assert item.release_date.isoformat() == movie["releaseDate"]
        assert item.release_date.year == movie["releaseYear"]
        assert 1960 <= movie["releaseYear"] <= 2026
        assert 1 <= len(movie["genres"]) <= 3
        assert set(movie["genres"]) <= set(GENRES)
        assert 80 <= movie["durationMinutes"] <= 180
        assert movie["minimumAge"] in {0, 7, 13, 16, 18}
        if "Horror" in movie["genres"]:
            assert movie["minimumAge"] >= 16
        if "Family" in movie["genres"]:
            assert movie["minimumAge"] <= 7
        assert movie["available"] is True
        assert 0 <= len(movie["tags"]) <= 4
        assert movie["country"]
    years = [m["releaseYear"] for m in world.movies]
    assert statistics.median(years) >= 2010, "skewed recent"
    assert len({g for m in world.movies for g in m["genres"]}) == len(GENRES)


def test_every_movie_in_the_events_is_in_the_catalog(
    world: World, movies: dict[str, dict[str, Any]]
) -> None:
    for event in world.events:
        if event["type"] == "search":
            assert event["movieId"] is None
        else:
            assert event["movieId"] in movies


# --- behaviour -----------------------------------------------------------------------------------
def test_users_mostly_watch_their_planted_tastes(
    world: World, movies: dict[str, dict[str, Any]]
) -> None:
    watched: dict[str, set[str]] = defaultdict(set)
    for event in world.events:
        if event["type"] == "watch":
            watched[event["userId"]].add(event["movieId"])
    catalog_genres = [set(m["genres"]) for m in world.movies]
    watched_shares, catalog_shares = [], []
    for user in world.users:
        seen = watched[user.user_id]
        if len(seen) < 5:
            continue
        liked = set(user.favourite_genres)
        watched_shares.append(sum(bool(liked & set(movies[m]["genres"])) for m in seen) / len(seen))
        catalog_shares.append(sum(bool(liked & g) for g in catalog_genres) / len(catalog_genres))
    assert len(watched_shares) > 300
    assert statistics.mean(watched_shares) > 0.75
    assert statistics.mean(watched_shares) > statistics.mean(catalog_shares) + 0.3

    # Cluster by cluster: horror fans watch horror far beyond its share of the catalog.
    horror_fans = [u for u in world.users if u.top_genre == "Horror"]
    assert horror_fans
    horror_watches = [
        "Horror" in movies[m]["genres"] for u in horror_fans for m in watched[u.user_id]
    ]
    horror_in_catalog = sum("Horror" in g for g in catalog_genres) / len(catalog_genres)
    assert statistics.mean(horror_watches) > 3 * horror_in_catalog


def test_users_have_planted_tastes_and_a_long_tail_of_activity(world: World) -> None:
    for user in world.users:
        assert 1 <= len(user.favourite_genres) <= 3
        assert set(user.favourite_genres) <= set(TASTES[user.taste])
        weights = list(user.favourite_genres.values())
        assert weights == sorted(weights, reverse=True)
        assert sum(weights) == pytest.approx(1.0, abs=1e-3)
        assert user.device in {"web", "ios", "android", "tv"}
        assert user.quality in {"720p", "1080p", "4k"}
    per_user = sorted(Counter(e["userId"] for e in world.events).values(), reverse=True)
    top_tenth = sum(per_user[: len(per_user) // 10])
    assert top_tenth > 0.3 * sum(per_user), "a few heavy users"
    assert statistics.median(per_user) < statistics.mean(per_user)


def test_movie_popularity_is_long_tailed(
    world: World, sessions: dict[str, list[dict[str, Any]]]
) -> None:
    per_movie = sorted(Counter(hs[0]["movieId"] for hs in sessions.values()).values())[::-1]
    assert sum(per_movie[:40]) > 0.35 * sum(per_movie), "the top tenth of the catalog"
    assert per_movie[-1] < per_movie[0] / 20


def test_watch_heartbeats_rise_within_a_session(
    world: World, movies: dict[str, dict[str, Any]], sessions: dict[str, list[dict[str, Any]]]
) -> None:
    full_length = finished = abandoned = 0
    for beats in sessions.values():
        assert len({(b["userId"], b["movieId"]) for b in beats}) == 1
        progress = [b["metadata"]["progressPercent"] for b in beats]
        durations = [b["metadata"]["watchDuration"] for b in beats]
        stamps = [b["clientTimestamp"] for b in beats]
        assert progress == sorted(progress)
        assert len(set(progress)) == len(progress)
        assert durations == sorted(durations)
        assert len(set(stamps)) == len(stamps)
        length = movies[beats[0]["movieId"]]["durationMinutes"] * 60
        assert all(0 <= d <= length for d in durations)
        if len(beats) > 1 and durations[0] == length:
            full_length += 1
        if progress[-1] >= 90:
            finished += 1
        else:
            abandoned += 1
        assert {b["metadata"]["device"] for b in beats} <= {"web", "ios", "android", "tv"}
        assert len({(b["metadata"]["device"], b["metadata"]["quality"]) for b in beats}) == 1
    assert statistics.mean(len(b) for b in sessions.values()) > 3
    assert 0.02 < full_length / len(sessions) < 0.1
    assert finished > abandoned > 0.1 * len(sessions)
    # Some movies come back in another session: resumed or rewatched.
    per_user_movie = Counter((b[0]["userId"], b[0]["movieId"]) for b in sessions.values())
    assert sum(1 for n in per_user_movie.values() if n > 1) > 0.03 * len(per_user_movie)


def test_off_taste_movies_are_abandoned_more(
    world: World, movies: dict[str, dict[str, Any]], sessions: dict[str, list[dict[str, Any]]]
) -> None:
    tastes = {u.user_id: set(u.favourite_genres) for u in world.users}
    finished: dict[bool, list[bool]] = {True: [], False: []}
    for beats in sessions.values():
        on_taste = bool(tastes[beats[0]["userId"]] & set(movies[beats[0]["movieId"]]["genres"]))
        finished[on_taste].append(beats[-1]["metadata"]["progressPercent"] >= 90)
    assert statistics.mean(finished[True]) > statistics.mean(finished[False]) + 0.25


def test_ratings_are_half_stars_and_higher_on_taste(
    world: World, movies: dict[str, dict[str, Any]]
) -> None:
    tastes = {u.user_id: set(u.favourite_genres) for u in world.users}
    by_taste: dict[bool, list[float]] = {True: [], False: []}
    edits = 0
    for event in world.events:
        if event["type"] != "rating":
            continue
        rating = event["metadata"]["rating"]
        assert rating in HALF_STARS
        if "previousRating" in event["metadata"]:
            assert event["metadata"]["previousRating"] in HALF_STARS
            assert event["metadata"]["previousRating"] != rating
            edits += 1
        on_taste = bool(tastes[event["userId"]] & set(movies[event["movieId"]]["genres"]))
        by_taste[on_taste].append(rating)
    assert edits > 0
    assert statistics.mean(by_taste[True]) > statistics.mean(by_taste[False]) + 0.5


def test_favorites_are_added_before_they_are_removed(world: World) -> None:
    added: set[tuple[str, str, str]] = set()
    removes = 0
    for event in world.events:
        if event["type"] != "favorite":
            continue
        key = (event["userId"], event["movieId"], event["metadata"]["listId"])
        if event["metadata"]["action"] == "add":
            added.add(key)
        else:
            assert event["metadata"]["action"] == "remove"
            assert key in added
            removes += 1
    assert 0 < removes < len(added) / 4


def test_searches_carry_a_query_and_often_lead_to_a_watch(
    world: World, sessions: dict[str, list[dict[str, Any]]]
) -> None:
    searches = [e for e in world.events if e["type"] == "search"]
    genre_names = {g.lower() for g in GENRES}
    for search in searches:
        metadata = search["metadata"]
        assert metadata["query"].strip()
        assert metadata["resultsCount"] >= 0
        assert metadata["sessionId"]
    led_to_watch = [s for s in searches if s["metadata"]["sessionId"] in sessions]
    assert len(led_to_watch) > 0.7 * len(searches)
    for search in led_to_watch:
        beats = sessions[search["metadata"]["sessionId"]]
        assert search["clientTimestamp"] < beats[0]["clientTimestamp"]
        assert search["userId"] == beats[0]["userId"]
    assert any(s["metadata"]["query"].lower() in genre_names for s in searches)


# --- files ---------------------------------------------------------------------------------------
def test_write_and_read_round_trip(tmp_path: Path) -> None:
    small = generate_world(21, movies=60, users=120)
    path = tmp_path / "world.jsonl"
    write_world(small, path)
    assert path.read_bytes() == _bytes(small)
    again = read_world(path)
    assert again == small
    kinds = Counter(line.split(b'"', 4)[3] for line in path.read_bytes().splitlines())
    assert kinds == {b"movie": 60, b"user": 120, b"event": len(small.events)}


def test_reading_a_foreign_line_fails(tmp_path: Path) -> None:
    path = tmp_path / "world.jsonl"
    path.write_bytes(b'{"kind": "planet"}\n')
    with pytest.raises(ValueError, match=r"world\.jsonl:1"):
        read_world(path)


def test_the_readme_names_the_demo_worlds_first_user() -> None:
    """README's quick start shows recommendations for this user: it must exist in every demo."""
    from pathlib import Path

    from interaction_recommender.settings import Settings

    defaults = Settings()
    world = generate_world(
        defaults.demo_seed, movies=defaults.demo_movies, users=defaults.demo_users
    )
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    assert f"/recommend/{world.users[0].user_id}?k=5" in readme
