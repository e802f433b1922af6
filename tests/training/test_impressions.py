"""Impressions in training: the "shown and ignored twice" rule and where its weak negatives go."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import numpy as np

from interaction_recommender.demo.events import world_catalog, world_events
from interaction_recommender.demo.world import generate_world
from interaction_recommender.events.messages import EventMessage
from interaction_recommender.events.schemas import EventType
from interaction_recommender.features.extractor import build_features
from interaction_recommender.features.state import UserFeatures
from interaction_recommender.feedback.repository import Impression, ImpressionRepository
from interaction_recommender.model.labels import LabelWeights
from interaction_recommender.settings import Settings
from interaction_recommender.storage.database import Database
from interaction_recommender.storage.migrate import migrate
from interaction_recommender.training.dataset import training_data
from interaction_recommender.training.fit import FitConfig, Params, fit_model
from interaction_recommender.training.impressions import (
    ShownList,
    before,
    ignored_twice,
    shown_lists,
    stored_shown_lists,
)
from interaction_recommender.training.pipeline import train_model
from tests.fixtures.app import embedded_settings

T0 = datetime(2026, 5, 1, 12, tzinfo=UTC)
USER = UUID(int=1)
OTHER_USER = UUID(int=2)
MOVIE = UUID(int=100)
OTHER_MOVIE = UUID(int=101)
SMALL = FitConfig(als_iterations=3)
_METADATA: dict[str, dict[str, Any]] = {
    "watch": {"progressPercent": 100.0, "watchDuration": 5400},
    "rating": {"rating": 4.0},
    "search": {"query": "space"},
}
_sequence = 0


def _event(kind: str, movie: UUID | None, at: datetime, user: UUID = USER) -> EventMessage:
    global _sequence
    _sequence += 1
    metadata = _METADATA.get(kind, {})
    return EventMessage(
        schema_version=1,
        event_id=UUID(int=(0xE0 << 120) + _sequence),
        sequence=_sequence,
        request_id=UUID(int=(0xF0 << 120) + _sequence),
        event_type=EventType(kind),
        user_id=user,
        movie_id=movie,
        client_timestamp=at,
        server_timestamp=at,
        metadata=metadata,
    )


def _shown(hours: float, *movies: UUID, user: UUID = USER) -> ShownList:
    return ShownList(user, movies, T0 + timedelta(hours=hours))


# --- the rule -------------------------------------------------------------------------------
def test_shown_once_and_ignored_is_nothing() -> None:
    assert ignored_twice([_shown(0, MOVIE)], []) == {}


def test_shown_twice_and_ignored_is_a_weak_negative() -> None:
    shown = [_shown(0, MOVIE, OTHER_MOVIE), _shown(5, MOVIE)]

    assert ignored_twice(shown, []) == {USER: {MOVIE}}


def test_shown_twice_but_watched_later_is_not_negative() -> None:
    watched = _event("watch", MOVIE, T0 + timedelta(days=2))

    assert ignored_twice([_shown(0, MOVIE), _shown(5, MOVIE)], [watched]) == {}


def test_a_touch_between_the_two_showings_leaves_only_one_ignored() -> None:
    rated = _event("rating", MOVIE, T0 + timedelta(hours=1))

    assert ignored_twice([_shown(0, MOVIE), _shown(5, MOVIE)], [rated]) == {}
    # ... and a third ignored showing makes it two.
    assert ignored_twice([_shown(0, MOVIE), _shown(5, MOVIE), _shown(9, MOVIE)], [rated]) == {
        USER: {MOVIE}
    }


def test_a_watch_at_the_moment_of_showing_counts_as_engaged() -> None:
    at_second_showing = _event("watch", MOVIE, T0 + timedelta(hours=5))

    # The first showing was engaged later, the second at its own moment: neither is ignored.
    assert ignored_twice([_shown(0, MOVIE), _shown(5, MOVIE)], [at_second_showing]) == {}


def test_only_the_same_user_and_movie_and_real_interactions_count() -> None:
    shown = [_shown(0, MOVIE), _shown(5, MOVIE)]
    unrelated = [
        _event("watch", MOVIE, T0 + timedelta(days=1), user=OTHER_USER),
        _event("watch", OTHER_MOVIE, T0 + timedelta(days=1)),
        _event("search", None, T0 + timedelta(days=1)),
    ]

    assert ignored_twice(shown, unrelated) == {USER: {MOVIE}}
    assert ignored_twice(shown, [], times=3) == {}


def test_a_movie_repeated_within_one_list_counts_once() -> None:
    assert ignored_twice([_shown(0, MOVIE, MOVIE)], []) == {}


def test_impression_log_rows_become_shown_lists() -> None:
    row = Impression(
        recommendation_id=UUID(int=7),
        user_id=USER,
        context="home",
        policy="home",
        model_version="v1",
        cached=False,
        items=[(str(MOVIE), 0.9), ("not-a-uuid", 0.5), (str(OTHER_MOVIE), 0.4)],
        shown_at=T0,
    )

    assert shown_lists([row]) == [ShownList(USER, (MOVIE, OTHER_MOVIE), T0)]


def test_before_keeps_each_users_lists_up_to_their_cut() -> None:
    shown = [_shown(0, MOVIE), _shown(10, MOVIE), _shown(1, MOVIE, user=OTHER_USER)]

    kept = before(shown, {USER: T0 + timedelta(hours=5)})

    assert kept == [shown[0]]


# --- where the weak negatives go ---------------------------------------------------------------
LIKED = UUID(int=200)
SHOWN = UUID(int=201)
FILLER = [UUID(int=300 + i) for i in range(6)]


def _world() -> tuple[dict[UUID, UserFeatures], dict[UUID, set[UUID]]]:
    """40 users all completed LIKED; the first 20 also SHOWN; the others were shown SHOWN twice
    and ignored it. Filler movies give the matrix some spread."""
    features = {}
    ignored: dict[UUID, set[UUID]] = {}
    for u in range(40):
        user = UUID(int=1000 + u)
        movies = [LIKED, FILLER[u % 6], FILLER[(u + 1) % 6]] + ([SHOWN] if u < 20 else [])
        events = [_event("watch", m, T0 + timedelta(hours=i), user) for i, m in enumerate(movies)]
        features[user] = build_features(user, [(e, None) for e in events])
        if u >= 20:
            ignored[user] = {SHOWN}
    return features, ignored


def test_training_data_has_weak_negatives_only_when_the_weight_is_set() -> None:
    features, ignored = _world()
    liked_user = UUID(int=1000)  # watched SHOWN: its label wins over any impression
    ignored[liked_user] = {SHOWN}

    off = training_data(features, LabelWeights(ignored_twice=0.0), ignored=ignored)
    on = training_data(
        features,
        LabelWeights(ignored_twice=-0.3),
        ignored=ignored,
    )

    assert off.weak_negatives is None
    assert on.weak_negatives is not None
    assert on.weak_negatives.nnz == 20
    assert np.allclose(on.weak_negatives.data, -0.3)
    column = on.item_index[SHOWN]
    assert on.weak_negatives[on.users.index(liked_user), column] == 0
    assert (on.matrix != off.matrix).nnz == 0  # the positives are untouched


def test_weak_negatives_pull_down_the_ease_weight_to_the_ignored_movie() -> None:
    features, ignored = _world()
    params = Params(ease_l2=10.0, als=(8, 1.0, 2.0), ranker_weights={"ease": 1.0})

    def fit(weight: float) -> tuple[float, int]:
        model = fit_model(
            features,
            [],
            params,
            LabelWeights(ignored_twice=weight),
            SMALL,
            version="t",
            ignored=ignored,
        )
        assert model.ease is not None
        weight_to_shown = float(model.ease[model.index[LIKED], model.index[SHOWN]])
        return weight_to_shown, model.info["weakNegatives"]

    without, none = fit(0.0)
    with_negatives, twenty = fit(-0.5)

    assert (none, twenty) == (0, 20)
    assert with_negatives < without


def test_weak_negatives_are_off_by_default_since_the_confirmation_withdrew_them() -> None:
    # bench/feedback_replay.py on fresh seeds did not confirm -0.1 (docs/recommendations.md)
    assert LabelWeights().ignored_twice == 0.0
    assert LabelWeights.from_settings(Settings()).ignored_twice == 0.0


def test_train_model_takes_impressions_only_when_the_weight_is_set() -> None:
    world = generate_world(12, movies=60, users=200, days=30)
    events, catalog = world_events(world), world_catalog(world)
    end = max(e.client_timestamp for e in events)
    every_movie = tuple(m.movie_id for m in catalog)
    users = sorted({e.user_id for e in events}, key=str)
    # Every user was shown the whole catalog twice at the end: each untouched movie is ignored.
    shown = [ShownList(u, every_movie, end + timedelta(minutes=m)) for u in users for m in (1, 2)]
    config = FitConfig(
        als_grid=((8, 5.0, 2.0),), als_iterations=3, ease_l2_grid=(100.0,), ranker_grid={}
    )

    off = train_model(
        events, catalog, labels=LabelWeights(ignored_twice=0.0), config=config, impressions=shown
    )
    on = train_model(
        events, catalog, labels=LabelWeights(ignored_twice=-0.3), config=config, impressions=shown
    )

    assert off.model.info["weakNegatives"] == 0
    assert on.model.info["weakNegatives"] > len(users)
    assert on.model.labels.ignored_twice == -0.3
    assert on.metrics["users"] == off.metrics["users"]


async def test_the_stored_impression_log_reads_back_as_shown_lists(tmp_path: Path) -> None:
    database = Database(embedded_settings(tmp_path))
    try:
        await migrate(database)
        row = Impression(
            recommendation_id=UUID(int=9),
            user_id=USER,
            context="home",
            policy="home",
            model_version="v1",
            cached=False,
            items=[(str(MOVIE), 0.9), (str(OTHER_MOVIE), 0.4)],
            shown_at=T0,
        )
        async with database.transaction() as conn:
            await ImpressionRepository(conn).add([row])
        async with database.transaction() as conn:
            shown = await stored_shown_lists(conn)
    finally:
        await database.dispose()

    assert shown == [ShownList(USER, (MOVIE, OTHER_MOVIE), T0)]
