"""Two-stage retrieval: the few hundred candidates hold what scoring the whole catalog would put
first, hidden and excluded movies never come back, and movies the model has no factors for can
still be found."""

from __future__ import annotations

import statistics
import uuid
from dataclasses import replace
from datetime import datetime

import numpy as np
import pytest

from interaction_recommender.demo.events import world_catalog, world_events
from interaction_recommender.demo.world import generate_world
from interaction_recommender.features.state import UserFeatures
from interaction_recommender.model.arrays import RecommenderModel
from interaction_recommender.model.catalog_view import CatalogView, build_catalog_view
from interaction_recommender.model.context import Context
from interaction_recommender.model.engine import (
    EngineSettings,
    candidate_rows,
    recommend,
    score_candidates,
)
from interaction_recommender.model.labels import LabelWeights
from interaction_recommender.training.dataset import features_by_user
from interaction_recommender.training.fit import FitConfig, Params, fit_model
from tests.recs.world import catalog_movie

SETTINGS = EngineSettings()
EVERYTHING = replace(SETTINGS, retrieval=False)


class World:
    def __init__(self) -> None:
        world = generate_world(5, movies=3000, users=1500, days=60)
        self.catalog = world_catalog(world)
        events = world_events(world)
        self.now = max(e.client_timestamp for e in events)
        by_id = {m.movie_id: m for m in self.catalog}
        self.features = features_by_user(events, by_id.get)
        params = Params(None, (32, 35.0, 4.0), {"als": 1.0, "item_knn": 0.25, "popularity": 0.3})
        self.model = fit_model(
            self.features, self.catalog, params, LabelWeights(), FitConfig(), version="retrieval"
        )
        self.view = build_catalog_view(self.model, self.catalog, catalog_version=1)
        busy = [f for f in self.features.values() if f.total_interactions >= 15]
        self.users = sorted(busy, key=lambda f: str(f.user_id))[:60]


@pytest.fixture(scope="module")
def world() -> World:
    return World()


def _top_ten(
    settings: EngineSettings,
    features: UserFeatures,
    context: Context,
    model: RecommenderModel,
    view: CatalogView,
    now: datetime,
) -> list[int]:
    c = candidate_rows(features, context, model, view, now=now, settings=settings)
    scores = score_candidates(c, context, model, settings)
    return c.pool[np.lexsort((c.pool, -scores))[:10]].tolist()  # type: ignore[no-any-return]


def _contexts(world: World, features: UserFeatures) -> list[Context]:
    anchor = next(reversed(features.watch_history))
    return [Context("home"), Context("search"), Context("similar", anchor)]


def test_the_candidates_hold_the_whole_catalogs_top_ten(world: World) -> None:
    recalls: dict[str, list[float]] = {"home": [], "search": [], "similar": []}
    pools = []
    for features in world.users:
        for context in _contexts(world, features):
            reference = _top_ten(EVERYTHING, features, context, world.model, world.view, world.now)
            found = _top_ten(SETTINGS, features, context, world.model, world.view, world.now)
            if reference:
                recalls[context.kind].append(len(set(found) & set(reference)) / len(reference))
            pools.append(
                candidate_rows(
                    features, context, world.model, world.view, now=world.now, settings=SETTINGS
                ).pool.size
            )

    assert max(pools) < 0.4 * world.view.n_items  # a real first stage, not the catalog
    for kind, values in recalls.items():
        assert statistics.fmean(values) >= 0.95, (kind, statistics.fmean(values))


def test_hidden_and_excluded_movies_never_come_back(world: World) -> None:
    features = world.users[0]
    first = recommend(features, Context("home"), 20, world.model, world.view, now=world.now)
    hidden = {r.movie_id for r in first[:5]}
    catalog = [replace(m, available=False) if m.movie_id in hidden else m for m in world.catalog]
    view = build_catalog_view(world.model, catalog, catalog_version=2)

    again = recommend(features, Context("home"), 20, world.model, view, now=world.now)

    assert not hidden & {r.movie_id for r in again}
    assert not set(features.seen) & {r.movie_id for r in again}


def test_a_movie_the_model_never_saw_is_found_by_its_genre(world: World) -> None:
    """A new movie (no factors, no neighbours, no popularity) of a user's favourite genre."""
    features = world.users[0]
    genre = max(features.genre_affinity, key=lambda g: features.genre_affinity[g])
    new_movie = catalog_movie(uuid.UUID(int=12345, version=4), "Brand New", genre, world.now.year)
    view = build_catalog_view(world.model, [*world.catalog, new_movie], catalog_version=3)
    c = candidate_rows(
        features, Context("home"), world.model, view, now=world.now, settings=SETTINGS
    )

    assert view.index[new_movie.movie_id] >= view.n_model  # unknown to the model
    assert view.index[new_movie.movie_id] in c.pool.tolist()
