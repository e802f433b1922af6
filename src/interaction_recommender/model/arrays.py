"""The trained model: plain numpy arrays prepared at training time, and the ranker.

Collaborative scores come from EASE (a dense item x item matrix) while the catalog is small
(`ease_max_items`), and from ALS item factors otherwise; neighbour lists (top-K per item) serve
"because you watched" / "similar to" at any size. Everything a request needs is precomputed, so a
request is a handful of numpy operations over these arrays.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol
from uuid import UUID

import numpy as np
import numpy.typing as npt

from interaction_recommender.model.labels import LabelWeights

__all__ = [
    "FEATURE_NAMES",
    "FEATURE_SEMANTICS",
    "LinearRanker",
    "Ranker",
    "RecommenderModel",
    "popularity_model",
]

Floats = npt.NDArray[np.float32]
Ints = npt.NDArray[np.int32]

# The ranker's input: one row per candidate, these columns in this order (docs/recommendations.md).
# The continuous columns are standardised with statistics fixed at training time (see
# FEATURE_SEMANTICS); the flags and genre_affinity are used as they are.
FEATURE_NAMES: tuple[str, ...] = (
    "ease",  # EASE score from the user's history (0 when the model has no EASE part)
    "als",  # ALS score (user vector folded in from the history)
    "item_knn",  # sum of neighbour similarities to the user's history
    "popularity",  # log number of users with a positive label
    "trending",  # time-decayed positives at training time
    "genre_affinity",  # the user's decayed affinity to the movie's genres (0..1)
    "new_release",  # 1 if released this year or last year
    "search_match",  # 1 if the title or a genre matches a recent search keyword
)

FEATURE_SEMANTICS = 2
"""What the feature row means, as a version (the manifest's `featureSemantics`):
1: continuous columns standardised over each request's whole candidate pool (the catalog);
2: continuous columns standardised with the model's fixed `feature_stats` (mean and standard
   deviation over the whole-catalog rows of a sample of training users), so a value means the
   same whatever the candidates beside it (two-stage retrieval scores a few hundred).
A ranker is tuned for one meaning: an artifact of another is never scored."""


class Ranker(Protocol):
    """Anything with scikit-learn's classifier (predict_proba) or regressor (predict) shape."""

    def predict_proba(self, features: Floats) -> Floats: ...


@dataclass
class LinearRanker:
    """The default ranker: p = sigmoid(x · w + b). Exposes predict_proba like a scikit-learn
    classifier, so a scikit-learn classifier trained on FEATURE_NAMES can take its place
    (docs/recommendations.md, "Bring your own ranker")."""

    weights: Floats
    bias: float = 0.0
    feature_names: tuple[str, ...] = FEATURE_NAMES

    def decision_function(self, features: Floats) -> Floats:
        return (features @ self.weights + np.float32(self.bias)).astype(np.float32)

    def predict_proba(self, features: Floats) -> Floats:
        positive = 1.0 / (1.0 + np.exp(-self.decision_function(features)))
        return np.column_stack([1.0 - positive, positive]).astype(np.float32)


@dataclass
class RecommenderModel:
    version: str
    item_ids: list[UUID]
    popularity: Floats
    trending: Floats
    neighbors: Ints
    """(items, K) neighbour indices, most similar first; -1 pads."""
    neighbor_weights: Floats
    """(items, K) similarities of ``neighbors``."""
    ranker: Any
    labels: LabelWeights
    trained_at: datetime
    data_until: datetime | None
    ease: Floats | None = None
    """(items, items) EASE weights, or None above ease_max_items."""
    item_factors: Floats | None = None
    """(items, factors) ALS item factors, or None."""
    als_regularization: float = 0.0
    als_alpha: float = 1.0
    feature_names: tuple[str, ...] = FEATURE_NAMES
    feature_semantics: int = 1
    """FEATURE_SEMANTICS of the rows the ranker was tuned on (artifacts without it: 1)."""
    feature_stats: Floats | None = None
    """(2, features): mean and standard deviation per column (semantics 2)."""
    calibration_lambda: float = 0.0
    """λ of the calibrated `home` re-ranking chosen at training (model/calibration.py);
    artifacts from before calibration: 0, the ranker's order."""
    info: dict[str, Any] = field(default_factory=dict)
    """Counts, parameters and offline metrics, copied into the manifest."""
    _index: dict[UUID, int] | None = field(default=None, repr=False, compare=False)
    _gram: Floats | None = field(default=None, repr=False, compare=False)

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    @property
    def personalised(self) -> bool:
        """False for the popularity-only fallback (no collaborative part)."""
        return self.ease is not None or self.item_factors is not None

    @property
    def index(self) -> dict[UUID, int]:
        if self._index is None:
            self._index = {movie_id: i for i, movie_id in enumerate(self.item_ids)}
        return self._index

    def collaborative_top(self, user_vector: Floats, n: int) -> npt.NDArray[np.int64]:
        """The ``n`` items with the largest ALS score for this user vector (unordered)."""
        assert self.item_factors is not None
        scores = self.item_factors @ user_vector
        if scores.size <= n:
            return np.arange(scores.size, dtype=np.int64)
        return np.argpartition(-scores, n - 1)[:n].astype(np.int64)

    @property
    def gram(self) -> Floats:
        """YᵀY + λI of the item factors, for folding a user in at request time."""
        if self._gram is None:
            assert self.item_factors is not None
            factors = self.item_factors
            gram = factors.T @ factors
            gram += np.eye(gram.shape[0], dtype=np.float32) * np.float32(self.als_regularization)
            self._gram = gram.astype(np.float32)
        return self._gram

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_index"] = None  # rebuilt on load: smaller artifacts
        state["_gram"] = None
        return state


def popularity_model(counts: dict[UUID, int], *, version: str = "fallback") -> RecommenderModel:
    """The fallback when no trained model is available: recent interaction counts only."""
    items = sorted(counts, key=lambda m: (-counts[m], str(m)))
    popularity = np.log1p(np.array([counts[m] for m in items], dtype=np.float32))
    stats = np.zeros((2, len(FEATURE_NAMES)), dtype=np.float32)
    stats[1] = 1.0
    for name in ("popularity", "trending"):  # both columns are the popularity here
        column = FEATURE_NAMES.index(name)
        stats[0, column] = popularity.mean() if popularity.size else 0.0
        stats[1, column] = max(float(popularity.std()), 1e-6) if popularity.size else 1.0
    return RecommenderModel(
        version=version,
        item_ids=items,
        popularity=popularity,
        trending=popularity.copy(),
        neighbors=np.full((len(items), 1), -1, dtype=np.int32),
        neighbor_weights=np.zeros((len(items), 1), dtype=np.float32),
        ranker=LinearRanker(weights=np.zeros(len(FEATURE_NAMES), dtype=np.float32)),
        labels=LabelWeights(),
        trained_at=datetime.now(UTC),
        data_until=None,
        feature_semantics=FEATURE_SEMANTICS,
        feature_stats=stats,
        info={"fallback": "recent interaction counts"},
    )
