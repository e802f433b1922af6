"""Planted focused users: a world of three single-genre taste clusters, trained as `recommender
train` trains (train_model, default configuration) and served with the default engine settings.
A user whose history is one genre keeps a list of that genre: the calibrated re-ranking follows
the user's genre distribution, where the old genre cap took 60% of the list away from it."""

from __future__ import annotations

import random
import uuid
from datetime import timedelta

from interaction_recommender.features.extractor import build_features
from interaction_recommender.model.catalog_view import build_catalog_view
from interaction_recommender.model.context import Context
from interaction_recommender.model.engine import EngineSettings, recommend
from interaction_recommender.training.pipeline import train_model
from tests.recs.world import END, catalog_movie, completed_watch

GENRES = ("Drama", "Comedy", "Horror")


def _three_cluster_world(seed: int = 5, users_per_cluster: int = 60):  # type: ignore[no-untyped-def]
    rng = random.Random(seed)
    movies = {
        g: [uuid.UUID(int=rng.getrandbits(128), version=4) for _ in range(30)] for g in GENRES
    }
    catalog = [
        catalog_movie(m, f"{genre} story {i}", genre, 2000 + i % 20)
        for genre, ids in movies.items()
        for i, m in enumerate(ids)
    ]
    users: dict[uuid.UUID, str] = {}
    focused: set[uuid.UUID] = set()
    events = []
    sequence = 0
    start = END - timedelta(days=60)
    for genre in GENRES:
        own = movies[genre]
        weights = [1.0 / (rank + 1) ** 0.8 for rank in range(len(own))]  # a popularity skew
        for _ in range(users_per_cluster):
            user = uuid.UUID(int=rng.getrandbits(128), version=4)
            users[user] = genre
            picks = list(dict.fromkeys(rng.choices(own, weights, k=14)))[:10]
            if rng.random() < 0.3:  # some users also tried one movie of another cluster
                other = rng.choice([g for g in GENRES if g != genre])
                picks.append(rng.choice(movies[other]))
            else:
                focused.add(user)
            for movie in picks:
                sequence += 1
                when = start + timedelta(minutes=3 * sequence)
                events.append(completed_watch(user, movie, sequence, when))
    return catalog, events, movies, users, focused


def test_focused_users_keep_their_genre_with_the_default_settings() -> None:
    catalog, events, movies, users, focused = _three_cluster_world()
    result = train_model(events, catalog, version="clusters")
    model = result.model
    view = build_catalog_view(model, catalog, catalog_version=0)
    by_id = {m.movie_id: m for m in catalog}

    shares = []
    for user in sorted(focused, key=str)[::3]:
        history = [e for e in events if e.user_id == user]
        features = build_features(user, [(e, by_id.get(e.movie_id)) for e in history])
        picks = recommend(
            features, Context("home"), 10, model, view, now=END, settings=EngineSettings()
        )
        assert len(picks) == 10
        own = set(movies[users[user]])
        shares.append(sum(p.movie_id in own for p in picks) / len(picks))

    assert len(shares) >= 20
    assert min(shares) >= 0.8, sorted(shares)
    assert model.calibration_lambda == result.model.info["params"]["calibrationLambda"]
