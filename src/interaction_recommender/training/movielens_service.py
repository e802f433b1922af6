"""The service's own row in the MovieLens benchmark, through its real path: train rows become
rating events and ml-100k.item the catalog -> the training pipeline (features, labels, tuning on
the inner split, fit) -> a joblib artifact written and loaded back -> the engine's entry point
with context `home`, k = 10."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from uuid import UUID

import numpy as np
from scipy import sparse

from interaction_recommender.catalog.movie import CatalogMovie
from interaction_recommender.events.messages import SCHEMA_VERSION, EventMessage
from interaction_recommender.events.schemas import EventType
from interaction_recommender.features.state import UserFeatures
from interaction_recommender.model.bundle import read_bundle, write_bundle
from interaction_recommender.model.catalog_view import build_catalog_view
from interaction_recommender.model.context import Context
from interaction_recommender.model.engine import EngineSettings, recommend
from interaction_recommender.model.labels import LabelWeights
from interaction_recommender.model.signing import SigningKeys, generate_key
from interaction_recommender.training.baselines import top_k
from interaction_recommender.training.benchmark import UNCALIBRATED_ROW, ServiceFit
from interaction_recommender.training.dataset import features_by_user, training_data
from interaction_recommender.training.fit import FitConfig, ease_weights, fit_model, tune
from interaction_recommender.training.metrics import ranking_metrics
from interaction_recommender.training.movielens import Interactions, ItemMetadata, Split

__all__ = ["service_model"]

_NAMESPACE = uuid.UUID("5b3c1f6e-6a0c-4c1e-9a39-6d1f5a1b2c3d")


def service_model(
    *,
    engine: EngineSettings = EngineSettings(),
    labels: LabelWeights = LabelWeights(),
    config: FitConfig = FitConfig(),
    ease_l2_grid: Sequence[float] = (50.0, 100.0, 200.0, 300.0, 400.0, 500.0, 700.0, 1000.0),
    fixed_lambdas: Sequence[float] = (0.7, 0.9),
) -> Callable[[Interactions, ItemMetadata, Split], list[ServiceFit]]:
    """One fit of the service's model with ``labels``, ``config`` and ``engine`` (pass
    `recommender serve`'s own: the first row is the headline); labelled rows of the same fit
    with λ = 0 (the ranker's order, no calibration) and with each of ``fixed_lambdas`` (what
    more calibration than training chose would cost and buy); and a fair baseline, EASE on the
    same label-weighted matrix the service trains on, its l2 tuned on the inner split."""

    def fit_and_recommend(
        train: Interactions, items: ItemMetadata, inner: Split
    ) -> list[ServiceFit]:
        item_ids = [uuid.uuid5(_NAMESPACE, f"item-{raw}") for raw in items.raw_ids]
        user_ids = [uuid.uuid5(_NAMESPACE, f"user-{u}") for u in range(train.n_users)]
        catalog = [_movie(item_ids[i], items, i) for i in range(len(item_ids))]
        by_id = {m.movie_id: m for m in catalog}

        inner_features = features_by_user(
            _rating_events(inner.train, user_ids, item_ids), by_id.get
        )
        inner_test: dict[UUID, set[UUID]] = {}
        for u, i in zip(inner.test.users, inner.test.items, strict=True):
            inner_test.setdefault(user_ids[u], set()).add(item_ids[i])
        params = tune(inner_features, inner_test, catalog, labels, config, now=_latest(inner.train))
        features = features_by_user(_rating_events(train, user_ids, item_ids), by_id.get)
        fitted = fit_model(features, catalog, params, labels, config, version="movielens")
        # served as production serves it: through a signed bundle, written and read back
        keys = SigningKeys.parse(generate_key())
        model, _ = read_bundle(write_bundle(fitted, keys), keys)
        view = build_catalog_view(model, catalog, catalog_version=0)
        index = {movie_id: i for i, movie_id in enumerate(item_ids)}
        now = _latest(train)

        def recommender(settings: EngineSettings) -> Callable[[np.ndarray, int], np.ndarray]:
            def recommend_for(users: np.ndarray, k: int, /) -> np.ndarray:
                out = np.full((len(users), k), -1, dtype=np.int64)
                for row, user in enumerate(users):
                    state = features.get(user_ids[int(user)])
                    picks = recommend(
                        state, Context("home"), k, model, view, now=now, settings=settings
                    )
                    out[row, : len(picks)] = [index[p.movie_id] for p in picks]
                return out

            return recommend_for

        served = engine.calibration_for(model)
        plain = EngineSettings(diversity=engine.diversity, calibration_lambda=0.0)
        weighted = _weighted_ease(
            features, inner_features, inner_test, item_ids, user_ids, labels, ease_l2_grid
        )
        return [
            ServiceFit(
                recommend=recommender(engine),
                configs_tuned=params.configs_tried,
                params=params.as_dict(),
                name=f"service (default, λ = {served:g})",
                headline=True,
            ),
            ServiceFit(
                recommend=recommender(plain),
                configs_tuned=params.configs_tried,
                params=params.as_dict(),
                name=UNCALIBRATED_ROW,
            ),
            *(
                ServiceFit(
                    recommend=recommender(
                        EngineSettings(diversity=engine.diversity, calibration_lambda=strength)
                    ),
                    configs_tuned=params.configs_tried,
                    params=params.as_dict(),
                    name=f"service, λ = {strength:g} (fixed)",
                )
                for strength in fixed_lambdas
            ),
            weighted,
        ]

    return fit_and_recommend


def _weighted_ease(
    features: Mapping[UUID, UserFeatures],
    inner_features: Mapping[UUID, UserFeatures],
    inner_test: Mapping[UUID, set[UUID]],
    item_ids: list[UUID],
    user_ids: list[UUID],
    labels: LabelWeights,
    grid: Sequence[float],
) -> ServiceFit:
    """EASE on the matrix of label weights the service trains on (not the binary one): l2 by
    nDCG@10 on the inner split, refitted on the split's train part."""
    started = time.perf_counter()
    inner = _label_matrix(inner_features, item_ids, user_ids, labels)
    relevant = np.zeros(inner.shape, dtype=np.bool_)
    column = {m: i for i, m in enumerate(item_ids)}
    row_of = {u: r for r, u in enumerate(user_ids)}
    for user, movies in inner_test.items():
        relevant[row_of[user], [column[m] for m in movies]] = True
    rows = np.flatnonzero(relevant.any(axis=1))
    seen = (inner[rows] > 0).toarray()
    scores = {}
    for l2 in grid:
        top = top_k(np.asarray(inner[rows] @ ease_weights(inner, l2)), 10, exclude=seen)
        scores[l2] = float(ranking_metrics(top, relevant[rows], 10).means().ndcg)
    best = max(scores, key=lambda l2: (scores[l2], -l2))
    matrix = _label_matrix(features, item_ids, user_ids, labels)
    weights = ease_weights(matrix, best)
    seconds = time.perf_counter() - started

    def recommend_for(users: np.ndarray, k: int, /) -> np.ndarray:
        chosen = matrix[users]
        top: np.ndarray = top_k(np.asarray(chosen @ weights), k, exclude=(chosen > 0).toarray())
        return top

    return ServiceFit(
        recommend=recommend_for,
        configs_tuned=len(grid),
        params={"l2": best, "matrix": "label weights", "tuning": f"{seconds:.1f} s"},
        name="EASE on the service's weighted matrix",
    )


def _label_matrix(
    features: Mapping[UUID, UserFeatures],
    item_ids: list[UUID],
    user_ids: list[UUID],
    labels: LabelWeights,
) -> sparse.csr_matrix:
    """(users, items) positive label weights in the benchmark's user and item order."""
    data = training_data(features, labels, catalog=item_ids)
    column = np.array([data.item_index[m] for m in item_ids])
    users = {u: r for r, u in enumerate(data.users)}
    full = sparse.vstack(
        [
            data.matrix[users[u]] if u in users else sparse.csr_matrix((1, len(data.items)))
            for u in user_ids
        ]
    ).tocsr()
    return full[:, column].tocsr()


def _movie(movie_id: UUID, items: ItemMetadata, i: int) -> CatalogMovie:
    return CatalogMovie(
        movie_id=movie_id,
        title=items.titles[i],
        genres=tuple(items.genres[i]),
        release_year=items.years[i],
        release_date=None,
        duration_minutes=None,
        minimum_age=None,
        country=None,
        available=True,
        tags=(),
        source="demo",
        updated_at=datetime(2000, 1, 1, tzinfo=UTC),
    )


def _rating_events(
    rows: Interactions, user_ids: list[UUID], item_ids: list[UUID]
) -> list[EventMessage]:
    order = np.lexsort((np.arange(len(rows)), rows.timestamps))  # time, then file order
    events = []
    for sequence, r in enumerate(order, start=1):
        when = datetime.fromtimestamp(int(rows.timestamps[r]), UTC)
        events.append(
            EventMessage.model_construct(
                schema_version=SCHEMA_VERSION,
                event_id=uuid.UUID(int=sequence, version=4),
                sequence=sequence,
                request_id=uuid.UUID(int=sequence, version=4),
                event_type=EventType.RATING,
                user_id=user_ids[int(rows.users[r])],
                movie_id=item_ids[int(rows.items[r])],
                client_timestamp=when,
                server_timestamp=when,
                metadata={"rating": float(rows.ratings[r])},
            )
        )
    return events


def _latest(rows: Interactions) -> datetime:
    return datetime.fromtimestamp(int(rows.timestamps.max()), UTC)
