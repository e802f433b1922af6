"""`recommender train`: stored events -> features -> labels -> tuned fit -> evaluation on a
time-ordered holdout of the service's own data -> the artifact (model/artifact.py).

Three fits, so that the reported metrics are honest: the parameters (EASE l2, ALS, the ranker's
weights) are tuned on an inner holdout of the training part; the model fitted on the training
part with them is evaluated on the outer holdout (each user's last 20% of events, through the
engine's real entry point); the production model is then fitted on everything.

With impressions (the lists users were shown) and a non-zero LabelWeights.ignored_twice, movies
shown and ignored twice are weak negatives of both later fits (training/impressions.py); the
evaluated fit sees only the impressions and events before each user's holdout. Tuning uses the
events alone.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import numpy as np
import numpy.typing as npt

from interaction_recommender.catalog.movie import CatalogMovie
from interaction_recommender.events.messages import EventMessage
from interaction_recommender.model.arrays import RecommenderModel
from interaction_recommender.model.catalog_view import CatalogView, build_catalog_view
from interaction_recommender.model.context import Context
from interaction_recommender.model.engine import EngineSettings, recommend
from interaction_recommender.model.labels import LabelWeights, user_labels
from interaction_recommender.training.baselines import top_k
from interaction_recommender.training.dataset import (
    features_by_user,
    holdout_split,
    split_events,
)
from interaction_recommender.training.fit import FitConfig, fit_model, tune
from interaction_recommender.training.impressions import ShownList, before, ignored_twice
from interaction_recommender.training.metrics import paired_difference, ranking_metrics

__all__ = ["TrainResult", "evaluate_holdout", "train_model"]

Progress = Callable[[str], None]


@dataclass(frozen=True)
class TrainResult:
    model: RecommenderModel
    metrics: dict[str, Any]
    seconds: float


def train_model(
    events: Sequence[EventMessage],
    catalog: Sequence[CatalogMovie],
    *,
    labels: LabelWeights = LabelWeights(),
    config: FitConfig = FitConfig(),
    engine: EngineSettings = EngineSettings(),
    version: str | None = None,
    progress: Progress = lambda _: None,
    impressions: Sequence[ShownList] = (),
) -> TrainResult:
    started = time.perf_counter()
    by_id = {m.movie_id: m for m in catalog}
    version = version or datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    train_events, _ = split_events(events)
    use_impressions = bool(impressions) and labels.ignored_twice != 0

    progress("tuning on the inner holdout")
    inner = holdout_split(train_events, by_id.get, labels)
    params = tune(inner.train, inner.test, catalog, labels, config, now=_latest(train_events))

    progress("evaluating on the time-ordered holdout")
    outer = holdout_split(events, by_id.get, labels)
    ignored_before_holdout = (
        ignored_twice(before(impressions, _last_event_at(train_events)), train_events)
        if use_impressions
        else None
    )
    evaluated = fit_model(
        outer.train,
        catalog,
        params,
        labels,
        config,
        version=f"{version}-eval",
        ignored=ignored_before_holdout,
    )
    metrics = evaluate_holdout(
        evaluated, outer.train, outer.test, catalog, _latest(train_events), engine
    )

    progress("fitting the production model on all events")
    features = features_by_user(events, by_id.get)
    ignored = ignored_twice(impressions, events) if use_impressions else None
    model = fit_model(features, catalog, params, labels, config, version=version, ignored=ignored)
    model.info.update(
        {
            "events": len(events),
            "metrics": metrics,
            "engine": {
                "diversity": engine.diversity,
                "calibrationLambda": engine.calibration_lambda,
            },
        }
    )
    return TrainResult(model, metrics, time.perf_counter() - started)


def evaluate_holdout(
    model: RecommenderModel,
    train: dict[UUID, Any],
    test: dict[UUID, set[UUID]],
    catalog: Sequence[CatalogMovie],
    now: datetime,
    engine: EngineSettings = EngineSettings(),
    *,
    k: int = 10,
) -> dict[str, Any]:
    """nDCG@k, Precision@k, Recall@k and MAP of the engine's `home` answers for the users whose
    later events added liked movies; popularity alone for reference, and, when the model has an
    EASE part (its l2 tuned on the inner split), EASE alone on the same users: the scores of
    the liked movies' rows, the user's movies left out, with the paired nDCG difference."""
    view = build_catalog_view(model, catalog, catalog_version=0)
    users = sorted(u for u in test if u in train)
    if not users:
        return {"users": 0}
    relevant = np.zeros((len(users), view.n_items), dtype=np.bool_)
    recommended = np.full((len(users), k), -1, dtype=np.int64)
    popular = np.full((len(users), k), -1, dtype=np.int64)
    ease = np.full((len(users), k), -1, dtype=np.int64)
    # The reference: most popular first (MostPop), the user's own movies left out.
    by_popularity = [
        int(i) for i in np.argsort(-model.popularity, kind="stable") if view.available[i]
    ]
    for row, user in enumerate(users):
        relevant[row, [view.index[m] for m in test[user] if m in view.index]] = True
        picks = recommend(train[user], Context("home"), k, model, view, now=now, settings=engine)
        recommended[row, : len(picks)] = [view.index[p.movie_id] for p in picks]
        done = set(train[user].seen) | set(train[user].ratings) | set(train[user].watch_history)
        seen = {view.index[m] for m in done if m in view.index}
        ranked = [i for i in by_popularity if i not in seen][:k]
        popular[row, : len(ranked)] = ranked
        if model.ease is not None:
            ease[row] = _ease_top(model, view, train[user], seen, k)
    keep = relevant.any(axis=1)
    if not keep.any():
        return {"users": 0}
    per_user = ranking_metrics(recommended[keep], relevant[keep], k=k)
    ours = per_user.means()
    baseline = ranking_metrics(popular[keep], relevant[keep], k=k).means()
    versus_ease: dict[str, Any] = {}
    if model.ease is not None:
        alone = ranking_metrics(ease[keep], relevant[keep], k=k)
        delta = paired_difference(per_user.ndcg, alone.ndcg)
        versus_ease = {
            "easeNdcg": round(alone.means().ndcg, 4),
            "ndcgMinusEase": {
                "mean": round(delta.estimate, 4),
                "low": round(delta.low, 4),
                "high": round(delta.high, 4),
            },
        }
    return {
        "holdout": "each user's last 20% of events (time-ordered)",
        "users": int(keep.sum()),
        "k": k,
        "ndcg": round(ours.ndcg, 4),
        "precision": round(ours.precision, 4),
        "recall": round(ours.recall, 4),
        "map": round(ours.map, 4),
        "popularityNdcg": round(baseline.ndcg, 4),
        **versus_ease,
    }


def _ease_top(
    model: RecommenderModel, view: CatalogView, user: Any, seen: set[int], k: int
) -> npt.NDArray[np.int64]:
    """EASE's top k for one user: the summed EASE rows of the movies they liked (binary, as
    EASE is tuned), their own movies and unavailable ones left out; -1 pads."""
    assert model.ease is not None
    liked = [view.index[m] for m, w in user_labels(user, model.labels).items() if w > 0]
    liked = [i for i in liked if i < model.n_items]
    if not liked:
        return np.full(k, -1, dtype=np.int64)
    excluded = ~view.available[: model.n_items]
    excluded[[i for i in seen if i < model.n_items]] = True
    scores = model.ease[liked].sum(axis=0)
    top: npt.NDArray[np.int64] = top_k(scores[None, :], k, exclude=excluded[None, :])[0]
    return top


def _latest(events: Sequence[EventMessage]) -> datetime:
    return max((e.client_timestamp for e in events), default=datetime.now(UTC))


def _last_event_at(events: Sequence[EventMessage]) -> dict[UUID, datetime]:
    """Each user's latest event time (of the training side of the holdout)."""
    last: dict[UUID, datetime] = {}
    for event in events:
        if event.user_id not in last or event.client_timestamp > last[event.user_id]:
            last[event.user_id] = event.client_timestamp
    return last
