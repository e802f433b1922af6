"""Training data: stored events -> each user's features (the same pure extraction the stream
uses) -> implicit-feedback labels (model/labels.py) -> a sparse user x item matrix.

The time-ordered holdout keeps each user's last events apart: the model is trained on what the
user did first and judged on what they did next.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

import numpy as np
import numpy.typing as npt
from scipy import sparse

from interaction_recommender.catalog.movie import CatalogMovie
from interaction_recommender.events.messages import EventMessage
from interaction_recommender.features.extractor import build_features
from interaction_recommender.features.state import UserFeatures
from interaction_recommender.model.labels import LabelWeights, user_labels

__all__ = [
    "Holdout",
    "TrainingData",
    "features_by_user",
    "holdout_split",
    "split_events",
    "training_data",
]

MovieLookup = Callable[[UUID], CatalogMovie | None]


def features_by_user(
    events: Iterable[EventMessage], movie: MovieLookup
) -> dict[UUID, UserFeatures]:
    by_user: dict[UUID, list[EventMessage]] = defaultdict(list)
    for event in events:
        by_user[event.user_id].append(event)
    return {
        user: build_features(user, [(e, movie(e.movie_id) if e.movie_id else None) for e in evs])
        for user, evs in by_user.items()
    }


def split_events(
    events: Iterable[EventMessage], *, test_fraction: float = 0.2, min_events: int = 5
) -> tuple[list[EventMessage], list[EventMessage]]:
    """Per user, the first events (by sequence) and the last ``test_fraction`` of them; users
    with fewer than ``min_events`` events stay whole on the first side."""
    by_user: dict[UUID, list[EventMessage]] = defaultdict(list)
    for event in events:
        by_user[event.user_id].append(event)
    first: list[EventMessage] = []
    last: list[EventMessage] = []
    for evs in by_user.values():
        evs.sort(key=lambda e: e.sequence)
        cut = len(evs) if len(evs) < min_events else round(len(evs) * (1 - test_fraction))
        first += evs[:cut]
        last += evs[cut:]
    return first, last


@dataclass(frozen=True)
class Holdout:
    train: dict[UUID, UserFeatures]
    """Each user's features from their first events."""
    test: dict[UUID, set[UUID]]
    """Movies each user came to like in their last events (not liked before)."""


def holdout_split(
    events: Iterable[EventMessage],
    movie: MovieLookup,
    weights: LabelWeights,
    *,
    test_fraction: float = 0.2,
    min_events: int = 5,
) -> Holdout:
    """Per user, the last ``test_fraction`` of their events (by sequence, i.e. arrival) are held
    out; users with fewer than ``min_events`` events stay whole in training."""
    by_user: dict[UUID, list[EventMessage]] = defaultdict(list)
    for event in events:
        by_user[event.user_id].append(event)
    train: dict[UUID, UserFeatures] = {}
    test: dict[UUID, set[UUID]] = {}
    for user, evs in by_user.items():
        evs.sort(key=lambda e: e.sequence)
        pairs = [(e, movie(e.movie_id) if e.movie_id else None) for e in evs]
        cut = len(pairs) if len(pairs) < min_events else round(len(pairs) * (1 - test_fraction))
        train[user] = build_features(user, pairs[:cut])
        if cut < len(pairs):
            before = {m for m, w in user_labels(train[user], weights).items() if w > 0}
            after = user_labels(build_features(user, pairs), weights)
            later = {m for m, w in after.items() if w > 0 and m not in before}
            if later:
                test[user] = later
    return Holdout(train, test)


@dataclass(frozen=True)
class TrainingData:
    users: list[UUID]
    items: list[UUID]
    matrix: sparse.csr_matrix
    """(users, items) positive label weights."""
    times: npt.NDArray[np.float64]
    """Epoch seconds of each stored entry of ``matrix`` (aligned with ``matrix.data``)."""
    data_from: datetime | None
    data_until: datetime | None
    weak_negatives: sparse.csr_matrix | None = None
    """(users, items) LabelWeights.ignored_twice (< 0) where a movie was shown and ignored twice
    and has no label from the events; None when off or there are none."""

    @property
    def item_index(self) -> dict[UUID, int]:
        return {m: i for i, m in enumerate(self.items)}


def training_data(
    features: Mapping[UUID, UserFeatures],
    weights: LabelWeights,
    *,
    catalog: Sequence[UUID] = (),
    ignored: Mapping[UUID, set[UUID]] | None = None,
) -> TrainingData:
    """The positive labels of every user, over the movies they touched plus ``catalog``; with
    ``ignored`` (user -> movies shown and ignored twice, training/impressions.py) and a non-zero
    ``weights.ignored_twice``, the weak negatives too."""
    users = sorted(features, key=str)
    labelled = {u: user_labels(features[u], weights) for u in users}
    items = sorted({m for labels in labelled.values() for m in labels} | set(catalog), key=str)
    index = {m: i for i, m in enumerate(items)}
    rows, cols, values, times = [], [], [], []
    first: datetime | None = None
    last: datetime | None = None
    for row, user in enumerate(users):
        f = features[user]
        when = _times(f)
        fallback = f.last_activity_at.timestamp() if f.last_activity_at else 0.0
        for movie, weight in labelled[user].items():
            if weight > 0:
                rows.append(row)
                cols.append(index[movie])
                values.append(weight)
                times.append(when.get(movie, fallback))
        if f.created_at and (first is None or f.created_at < first):
            first = f.created_at
        if f.last_activity_at and (last is None or f.last_activity_at > last):
            last = f.last_activity_at
    coo = sparse.coo_matrix(
        (np.asarray(values, np.float32), (rows, cols)), shape=(len(users), len(items))
    )
    csr = coo.tocsr()
    # Times aligned with the CSR layout: sort the COO entries the same way (row, then column).
    order = np.lexsort((np.asarray(cols), np.asarray(rows)))
    aligned = np.asarray(times, np.float64)[order] if times else np.zeros(0, np.float64)
    negatives = _weak_negatives(users, index, labelled, ignored or {}, weights.ignored_twice)
    return TrainingData(users, items, csr, aligned, first, last, negatives)


def _weak_negatives(
    users: Sequence[UUID],
    index: Mapping[UUID, int],
    labelled: Mapping[UUID, Mapping[UUID, float]],
    ignored: Mapping[UUID, set[UUID]],
    weight: float,
) -> sparse.csr_matrix | None:
    """Ignored-twice movies without a label from the events (a label, even a later one, says
    more than not clicking), over the known users and items only."""
    if weight == 0 or not ignored:
        return None
    rows, cols = [], []
    for row, user in enumerate(users):
        for movie in ignored.get(user, ()):
            if movie in index and movie not in labelled[user]:
                rows.append(row)
                cols.append(index[movie])
    if not rows:
        return None
    values = np.full(len(rows), weight, np.float32)
    shape = (len(users), len(index))
    return sparse.csr_matrix((values, (rows, cols)), shape=shape)


def _times(features: UserFeatures) -> dict[UUID, float]:
    when = {m: e.last_watched_at.timestamp() for m, e in features.watch_history.items()}
    for movie, rating in features.ratings.items():
        when[movie] = max(when.get(movie, 0.0), rating.rated_at.timestamp())
    return when
