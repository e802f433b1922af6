"""The service's own row in the MovieLens benchmark, through its real path: train rows become
rating events and ml-100k.item the catalog -> the training pipeline (features, labels, tuning on
the inner split, fit) -> a joblib artifact written and loaded back -> the engine's entry point
with context `home`, k = 10."""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from uuid import UUID

import numpy as np

from interaction_recommender.catalog.movie import CatalogMovie
from interaction_recommender.events.messages import SCHEMA_VERSION, EventMessage
from interaction_recommender.events.schemas import EventType
from interaction_recommender.model.artifact import load_artifact, save_artifact
from interaction_recommender.model.catalog_view import build_catalog_view
from interaction_recommender.model.context import Context
from interaction_recommender.model.engine import EngineSettings, recommend
from interaction_recommender.model.labels import LabelWeights
from interaction_recommender.training.benchmark import ServiceFit
from interaction_recommender.training.dataset import features_by_user
from interaction_recommender.training.fit import FitConfig, fit_model, tune
from interaction_recommender.training.movielens import Interactions, ItemMetadata, Split

__all__ = ["service_model"]

_NAMESPACE = uuid.UUID("5b3c1f6e-6a0c-4c1e-9a39-6d1f5a1b2c3d")


def service_model(
    *,
    diversity: Sequence[bool] = (True, False),
    labels: LabelWeights = LabelWeights(),
    config: FitConfig = FitConfig(),
) -> Callable[[Interactions, ItemMetadata, Split], list[ServiceFit]]:
    """One fit; one benchmark row per diversity setting (the production one first)."""

    def fit_and_recommend(
        train: Interactions, items: ItemMetadata, inner: Split
    ) -> list[ServiceFit]:
        item_ids = [uuid.uuid5(_NAMESPACE, f"item-{raw}") for raw in items.raw_ids]
        user_ids = [uuid.uuid5(_NAMESPACE, f"user-{u}") for u in range(train.n_users)]
        catalog = [_movie(item_ids[i], items, i) for i in range(len(item_ids))]
        by_id = {m.movie_id: m for m in catalog}

        inner_events = _rating_events(inner.train, user_ids, item_ids)
        inner_test: dict[UUID, set[UUID]] = {}
        for u, i in zip(inner.test.users, inner.test.items, strict=True):
            inner_test.setdefault(user_ids[u], set()).add(item_ids[i])
        params = tune(
            features_by_user(inner_events, by_id.get),
            inner_test,
            catalog,
            labels,
            config,
            now=_latest(inner.train),
        )
        features = features_by_user(_rating_events(train, user_ids, item_ids), by_id.get)
        fitted = fit_model(features, catalog, params, labels, config, version="movielens")
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "recommender.pkl"
            save_artifact(fitted, path)
            model, _ = load_artifact(path)
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

        return [
            ServiceFit(
                recommend=recommender(EngineSettings(diversity=on)),
                configs_tuned=params.configs_tried,
                params=params.as_dict(),
                name=f"service ({'diversity on' if on else 'diversity off'})",
            )
            for on in diversity
        ]

    return fit_and_recommend


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
