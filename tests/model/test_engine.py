"""The engine on a world with a known answer: clusters, twins, availability, reasons."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import timedelta
from uuid import UUID

import numpy as np
import pytest

from interaction_recommender.features.extractor import build_features
from interaction_recommender.features.state import genre_affinity_at
from interaction_recommender.model import reasons as r
from interaction_recommender.model.arrays import RecommenderModel
from interaction_recommender.model.calibration import miscalibration, split_genres
from interaction_recommender.model.catalog_view import build_catalog_view
from interaction_recommender.model.context import Context, parse_context
from interaction_recommender.model.engine import STAGES, EngineSettings, StageLaps, recommend
from interaction_recommender.model.labels import LabelWeights
from interaction_recommender.training.dataset import features_by_user
from interaction_recommender.training.fit import FitConfig, Params, fit_model
from tests.recs.world import END, PlantedWorld, completed_watch, planted_world

SMALL = FitConfig(als_grid=((16, 5.0, 2.0),), als_iterations=5, ease_l2_grid=(20.0,))
_VOCABULARY = re.compile(
    r"^(collaborative|trending|popular|new_release|(because_you_watched|similar_to):[0-9a-f-]{36}"
    r"|matches_genre:.+|matches_search:.+)$"
)


@pytest.fixture(scope="module")
def world() -> PlantedWorld:
    return planted_world()


@pytest.fixture(scope="module", params=["ease", "als"])
def model(world: PlantedWorld, request: pytest.FixtureRequest) -> RecommenderModel:
    """The same world fitted with EASE (small catalogs) and with ALS only (large catalogs)."""
    features = features_by_user(world.events, {m.movie_id: m for m in world.catalog}.get)
    params = (
        Params(20.0, None, {"ease": 1.0, "genre_affinity": 0.25})
        if request.param == "ease"
        else Params(None, (16, 5.0, 2.0), {"als": 1.0, "item_knn": 0.25})
    )
    return fit_model(features, world.catalog, params, LabelWeights(), SMALL, version=request.param)


def _features(world: PlantedWorld, user: UUID):  # type: ignore[no-untyped-def]
    by_id = {m.movie_id: m for m in world.catalog}
    events = [e for e in world.events if e.user_id == user]
    return build_features(user, [(e, by_id.get(e.movie_id)) for e in events])


HOME = Context("home")


def _run(world, model, user_features, context=HOME, k=10, catalog=None):  # type: ignore[no-untyped-def]
    view = build_catalog_view(model, catalog or world.catalog, catalog_version=0)
    return recommend(user_features, context, k, model, view, now=END)


def test_a_user_of_a_cluster_gets_mostly_that_cluster(
    world: PlantedWorld, model: RecommenderModel
) -> None:
    for user, cluster in list(world.users.items())[::15]:
        own = set(world.drama if cluster == "drama" else world.comedy)
        picks = _run(world, model, _features(world, user))
        assert len(picks) == 10
        share = sum(p.movie_id in own for p in picks) / len(picks)
        assert share >= 0.8, (cluster, share)


def test_watched_movies_never_come_back(world: PlantedWorld, model: RecommenderModel) -> None:
    for user in list(world.users)[:20]:
        watched = {e.movie_id for e in world.events if e.user_id == user}
        picks = _run(world, model, _features(world, user), k=40)
        assert not watched & {p.movie_id for p in picks}
        assert len({p.movie_id for p in picks}) == len(picks)  # no duplicates


def test_a_started_movie_is_not_recommended_again(
    world: PlantedWorld, model: RecommenderModel
) -> None:
    user = next(iter(world.users))
    by_id = {m.movie_id: m for m in world.catalog}
    events = [e for e in world.events if e.user_id == user]
    top = _run(world, model, _features(world, user))[0].movie_id
    started = completed_watch(user, top, 100_000, END - timedelta(hours=1))
    started.metadata["progressPercent"] = 50.0  # paused halfway: "continue watching", not new
    features = build_features(user, [(e, by_id.get(e.movie_id)) for e in [*events, started]])

    assert top not in {p.movie_id for p in _run(world, model, features, k=40)}


def test_similar_returns_the_planted_twin_first(
    world: PlantedWorld, model: RecommenderModel
) -> None:
    first, second = world.twins
    picks = _run(world, model, None, context=Context("similar", first), k=5)

    assert picks[0].movie_id == second
    assert picks[0].reasons[0] == r.similar_to(first)
    assert first not in {p.movie_id for p in picks}


def test_unavailable_movies_never_appear(world: PlantedWorld, model: RecommenderModel) -> None:
    hidden = set(world.drama[2:12])
    catalog = [replace(m, available=m.movie_id not in hidden) for m in world.catalog]
    drama_user = next(u for u, c in world.users.items() if c == "drama")

    for context in (Context("home"), Context("similar", world.drama[2]), Context("search")):
        picks = _run(
            world, model, _features(world, drama_user), context=context, k=40, catalog=catalog
        )
        assert not hidden & {p.movie_id for p in picks}


def test_reasons_come_from_the_vocabulary_and_name_real_things(
    world: PlantedWorld, model: RecommenderModel
) -> None:
    user = next(iter(world.users))
    history = {e.movie_id for e in world.events if e.user_id == user}
    genres = {g for m in world.catalog for g in m.genres}
    for pick in _run(world, model, _features(world, user), k=20):
        assert pick.reasons
        assert 0.0 <= pick.score <= 1.0
        for reason in pick.reasons:
            assert _VOCABULARY.match(reason), reason
            if reason.startswith("because_you_watched:"):
                assert UUID(reason.split(":", 1)[1]) in history
            if reason.startswith("matches_genre:"):
                assert reason.split(":", 1)[1] in genres
    assert any(
        reason.startswith("because_you_watched:")
        for pick in _run(world, model, _features(world, user), k=20)
        for reason in pick.reasons
    )


def test_a_new_history_item_changes_the_answer(
    world: PlantedWorld, model: RecommenderModel
) -> None:
    """Events act without retraining: watching one twin brings the other to the top, with the
    reason naming the movie just watched."""
    first, second = world.twins
    user = next(
        u
        for u, c in world.users.items()
        if c == "drama"
        and not {first, second} & {e.movie_id for e in world.events if e.user_id == u}
    )
    by_id = {m.movie_id: m for m in world.catalog}
    events = [e for e in world.events if e.user_id == user]
    before = _run(world, model, build_features(user, [(e, by_id.get(e.movie_id)) for e in events]))
    events.append(completed_watch(user, first, 10_000, END))
    after = _run(world, model, build_features(user, [(e, by_id.get(e.movie_id)) for e in events]))

    assert [p.movie_id for p in after] != [p.movie_id for p in before]
    assert first not in {p.movie_id for p in after}  # just watched: filtered
    assert after[0].movie_id == second
    assert r.because_you_watched(first) in after[0].reasons


def test_an_unknown_user_gets_popular_or_trending(
    world: PlantedWorld, model: RecommenderModel
) -> None:
    picks = _run(world, model, None)

    assert len(picks) == 10
    for pick in picks:
        assert set(pick.reasons) <= {r.POPULAR, r.TRENDING, r.NEW_RELEASE}


def test_search_context_follows_the_searched_words(
    world: PlantedWorld, model: RecommenderModel
) -> None:
    import uuid

    from interaction_recommender.events.messages import SCHEMA_VERSION, EventMessage
    from interaction_recommender.events.schemas import EventType

    user = next(u for u, c in world.users.items() if c == "drama")
    search = EventMessage.model_construct(
        schema_version=SCHEMA_VERSION,
        event_id=uuid.uuid4(),
        sequence=99_999,
        request_id=uuid.uuid4(),
        event_type=EventType.SEARCH,
        user_id=user,
        movie_id=None,
        client_timestamp=END,
        server_timestamp=END,
        metadata={"query": "laughing cat"},
    )
    by_id = {m.movie_id: m for m in world.catalog}
    events = [e for e in world.events if e.user_id == user] + [search]
    features = build_features(user, [(e, by_id.get(e.movie_id)) for e in events])

    searched = {r.matches_search("laughing"), r.matches_search("cat")}
    home = _run(world, model, features, k=10)
    search_row = _run(world, model, features, context=Context("search"), k=10)

    comedy = set(world.comedy)
    matching = [p for p in search_row if p.movie_id in comedy]
    assert len(matching) >= 5  # biased to the searched words...
    assert len(matching) > sum(p.movie_id in comedy for p in home)
    assert all(searched & set(p.reasons) for p in matching)  # ... and saying so


def _mixed_taste_user(world: PlantedWorld):  # type: ignore[no-untyped-def]
    """A drama-cluster user who also finished four comedies: about a third of the history."""
    user = next(u for u, c in world.users.items() if c == "drama")
    by_id = {m.movie_id: m for m in world.catalog}
    events = [e for e in world.events if e.user_id == user]
    events += [
        completed_watch(user, movie, 100_000 + i, END - timedelta(hours=i + 1))
        for i, movie in enumerate(world.comedy[2:6])
    ]
    return build_features(user, [(e, by_id.get(e.movie_id)) for e in events])


def _miscalibration(features, picks, view) -> float:  # type: ignore[no-untyped-def]
    """KL(p ‖ q̃) of a list, p from the user's genre affinity (model/calibration.py)."""
    affinity = genre_affinity_at(features, END)
    target = np.array([max(affinity.get(g, 0.0), 0.0) for g in view.genres])
    items = np.array([view.index[p.movie_id] for p in picks])
    rows = split_genres(view.genre_matrix[items], view.genre_distribution)
    return miscalibration(target / target.sum(), rows, view.genre_distribution)


def test_home_is_calibrated_to_the_users_genre_mix(
    world: PlantedWorld, model: RecommenderModel
) -> None:
    features = _mixed_taste_user(world)
    view = build_catalog_view(model, world.catalog, catalog_version=0)

    def home(strength: float) -> list:  # type: ignore[type-arg]
        settings = EngineSettings(calibration_lambda=strength)
        return recommend(features, HOME, 10, model, view, now=END, settings=settings)

    plain, calibrated = home(0.0), home(0.9)
    comedy = set(world.comedy)

    assert _miscalibration(features, calibrated, view) < _miscalibration(features, plain, view)
    assert sum(p.movie_id in comedy for p in calibrated) > sum(p.movie_id in comedy for p in plain)
    assert home(0.9) == calibrated  # deterministic
    # DIVERSITY=false (deprecated) is strength 0
    off = EngineSettings(diversity=False, calibration_lambda=0.9)
    assert recommend(features, HOME, 10, model, view, now=END, settings=off) == plain


def test_calibration_leaves_search_similar_and_new_users_alone(
    world: PlantedWorld, model: RecommenderModel
) -> None:
    features = _mixed_taste_user(world)
    view = build_catalog_view(model, world.catalog, catalog_version=0)
    strong, none = EngineSettings(calibration_lambda=0.9), EngineSettings(calibration_lambda=0.0)
    contexts = [Context("search"), Context("similar", movie_id=world.twins[0])]
    for context in contexts:
        assert recommend(features, context, 10, model, view, now=END, settings=strong) == recommend(
            features, context, 10, model, view, now=END, settings=none
        )
    assert recommend(None, HOME, 10, model, view, now=END, settings=strong) == recommend(
        None, HOME, 10, model, view, now=END, settings=none
    )


def test_the_wire_score_falls_down_the_list_and_the_ranker_score_is_kept(
    world: PlantedWorld, model: RecommenderModel
) -> None:
    features = _mixed_taste_user(world)
    view = build_catalog_view(model, world.catalog, catalog_version=0)
    settings = EngineSettings(calibration_lambda=0.9)
    picks = recommend(features, HOME, 10, model, view, now=END, settings=settings)
    plain = recommend(
        features, HOME, 40, model, view, now=END, settings=EngineSettings(calibration_lambda=0.0)
    )
    raw = {p.movie_id: p.score for p in plain}  # uncalibrated: the wire score is the ranker's

    scores = [p.score for p in picks]
    assert scores == sorted(scores, reverse=True)
    assert all(p.ranker_score == pytest.approx(raw[p.movie_id]) for p in picks)
    assert all(p.score <= p.ranker_score for p in picks)
    assert [p.score for p in plain] == [p.ranker_score for p in plain]


@pytest.mark.parametrize(
    ("raw", "movie", "expected"),
    [
        ("home", None, Context("home")),
        (None, None, Context("home")),
        ("search", None, Context("search")),
        ("banana", None, Context("home", fallback=True)),
        ("detail", None, Context("home", fallback=True)),
        (
            "similar:00000000-0000-4000-8000-000000000001",
            None,
            Context("similar", UUID(int=1 | (4 << 76) | (1 << 63))),
        ),
    ],
)
def test_contexts(raw: str | None, movie: UUID | None, expected: Context) -> None:
    parsed = parse_context(raw, movie)
    assert parsed.kind == expected.kind
    assert parsed.fallback == expected.fallback
    if expected.kind == "similar":
        assert parsed.movie_id == UUID("00000000-0000-4000-8000-000000000001")


def test_a_bad_movie_id_in_a_context_is_an_error() -> None:
    with pytest.raises(ValueError, match="badly formed"):
        parse_context("similar:not-a-uuid")


def test_the_timing_hooks_change_no_answer_and_time_every_stage(
    world: PlantedWorld, model: RecommenderModel
) -> None:
    view = build_catalog_view(model, world.catalog, catalog_version=0)
    laps = StageLaps()
    for user in list(world.users)[:10]:
        features = _features(world, user)
        for context in (HOME, Context("search")):
            plain = recommend(features, context, 10, model, view, now=END)
            timed = recommend(features, context, 10, model, view, now=END, laps=laps)
            assert timed == plain
    assert set(laps.spent) == set(STAGES)
    assert all(spent >= 0 for spent in laps.spent.values())
