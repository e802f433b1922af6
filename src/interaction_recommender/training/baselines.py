"""Reference recommenders for the offline benchmark: SAR, MostPop, ItemKNN, EASE, implicit ALS.

All are plain NumPy on dense ``users x items`` matrices (ML-100K is 943 x 1,682), deterministic
(fixed seeds, stable tie-breaking: equal scores rank the lower item index first) and share one
interface::

    model = EASE(l2=500.0).fit(train)              # train: Interactions
    top = model.recommend(users, k=10)             # (len(users), k) item indices, best first

``recommend(..., exclude_seen=True)`` never returns an item the user has in ``train``; a row is
padded with ``-1`` when fewer than ``k`` candidates are left. Every rating counts as a binary
interaction, except SAR, which weights by rating and time as published.

BLAS threads are not limited here; the benchmark runner wraps the calls in ``threadpoolctl``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Protocol, Self

import numpy as np
import numpy.typing as npt

from interaction_recommender.training.movielens import (
    BoolArray,
    FloatArray,
    IntArray,
    Interactions,
)

Float32Array = npt.NDArray[np.float32]

SECONDS_PER_DAY = 24 * 60 * 60
_SCORE_CHUNK = 1024  # users scored at once


class Recommender(Protocol):
    """What the benchmark needs from a model."""

    name: str

    @property
    def params(self) -> Mapping[str, float]: ...

    def fit(self, train: Interactions) -> Self: ...

    def recommend(self, users: IntArray, k: int, exclude_seen: bool = True) -> IntArray: ...


def top_k(scores: FloatArray, k: int, exclude: BoolArray | None = None) -> IntArray:
    """Indices of the ``k`` best scores per row, best first; ties go to the lower index.

    ``exclude`` marks entries that must not be returned; ``-1`` pads rows with fewer than
    ``k`` eligible entries.
    """
    if k <= 0:
        raise ValueError("k must be positive")
    scores = np.array(scores, dtype=np.float64, copy=True)
    if np.isnan(scores).any():
        raise ValueError("scores contain NaN")
    if exclude is not None:
        scores[exclude] = -np.inf
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    picked = np.take_along_axis(scores, order, axis=1)
    result = np.where(np.isneginf(picked) & (exclude is not None), -1, order).astype(np.int64)
    if result.shape[1] < k:
        result = np.pad(result, ((0, 0), (0, k - result.shape[1])), constant_values=-1)
    return result


class ScoringRecommender(ABC):
    """Base class: subclasses fit item/user parameters and score all items for some users."""

    name = "model"

    def __init__(self) -> None:
        self._seen: BoolArray | None = None

    @property
    def params(self) -> Mapping[str, float]:
        return {}

    def fit(self, train: Interactions) -> Self:
        self._seen = train.seen_mask()
        self._fit(train)
        return self

    @abstractmethod
    def _fit(self, train: Interactions) -> None: ...

    @abstractmethod
    def scores(self, users: IntArray) -> FloatArray:
        """Scores of every item for each of ``users`` (``len(users) x n_items``)."""

    def recommend(self, users: IntArray, k: int, exclude_seen: bool = True) -> IntArray:
        if self._seen is None:
            raise RuntimeError(f"{self.name}: fit() before recommend()")
        users = np.asarray(users, dtype=np.int64)
        rows = [
            top_k(
                self.scores(chunk),
                k,
                self._seen[chunk] if exclude_seen else None,
            )
            for chunk in np.array_split(users, max(1, -(-len(users) // _SCORE_CHUNK)))
        ]
        return np.concatenate(rows) if rows else np.empty((0, k), dtype=np.int64)


class MostPop(ScoringRecommender):
    """Items ranked by their number of train interactions."""

    name = "MostPop"

    def __init__(self) -> None:
        super().__init__()
        self._popularity: FloatArray | None = None

    def _fit(self, train: Interactions) -> None:
        self._popularity = train.binary_matrix().sum(axis=0)

    def scores(self, users: IntArray) -> FloatArray:
        if self._popularity is None:
            raise RuntimeError("MostPop: fit() before scores()")
        return np.broadcast_to(self._popularity, (len(users), len(self._popularity)))


class SAR(ScoringRecommender):
    """Simple Algorithm for Recommendation, as Microsoft Recommenders' ``SARSingleNode`` with
    ``similarity_type="jaccard"``, ``timedecay_formula=True``, ``time_decay_coefficient=30``.

    Affinity ``A[u, i] = sum over u's rows of i: rating * 0.5 ** ((t_max - t) / half_life)``
    with ``t_max`` the latest train timestamp; similarity is Jaccard on the binary item
    co-occurrence ``C = B^T B`` (``C_ij / (C_ii + C_jj - C_ij)``); score ``= A @ S``.
    (Recommenders' ``normalize=True`` rescales each user's scores monotonically, so rankings
    are the same.)
    """

    name = "SAR"

    def __init__(self, half_life_days: float = 30.0) -> None:
        super().__init__()
        self.half_life_days = half_life_days
        self._affinity: FloatArray | None = None
        self._similarity: FloatArray | None = None

    @property
    def params(self) -> Mapping[str, float]:
        return {"half_life_days": self.half_life_days}

    def _fit(self, train: Interactions) -> None:
        t_max = float(train.timestamps.max())
        age = (t_max - train.timestamps.astype(np.float64)) / (
            self.half_life_days * SECONDS_PER_DAY
        )
        self._affinity = train.weighted_matrix(train.ratings * np.power(0.5, age))
        binary = train.binary_matrix()
        cooccurrence = binary.T @ binary
        frequency = np.diag(cooccurrence)
        union = frequency[:, None] + frequency[None, :] - cooccurrence
        self._similarity = np.divide(
            cooccurrence, union, out=np.zeros_like(cooccurrence), where=union > 0
        )

    def scores(self, users: IntArray) -> FloatArray:
        if self._affinity is None or self._similarity is None:
            raise RuntimeError("SAR: fit() before scores()")
        return self._affinity[users] @ self._similarity


class ItemKNN(ScoringRecommender):
    """Item-based k-nearest neighbours with shrunk cosine similarity on binary interactions.

    ``sim(i, j) = C_ij / (sqrt(n_i n_j) + shrinkage)``; for each target item ``j`` only its
    ``neighbors`` most similar items are kept; ``score(u, j) = sum over u's items of sim``.
    """

    name = "ItemKNN"

    def __init__(self, neighbors: int = 100, shrinkage: float = 0.0) -> None:
        super().__init__()
        if neighbors <= 0:
            raise ValueError("neighbors must be positive")
        self.neighbors = neighbors
        self.shrinkage = shrinkage
        self._interactions: FloatArray | None = None
        self._weights: FloatArray | None = None

    @property
    def params(self) -> Mapping[str, float]:
        return {"neighbors": self.neighbors, "shrinkage": self.shrinkage}

    def _fit(self, train: Interactions) -> None:
        binary = train.binary_matrix()
        cooccurrence = binary.T @ binary
        norms = np.sqrt(np.diag(cooccurrence))
        denominator = norms[:, None] * norms[None, :] + self.shrinkage
        similarity = np.divide(
            cooccurrence, denominator, out=np.zeros_like(cooccurrence), where=denominator > 0
        )
        np.fill_diagonal(similarity, 0.0)
        n_items = similarity.shape[0]
        if self.neighbors < n_items:
            # per column j keep the `neighbors` largest similarities (ties: lower item index)
            order = np.argsort(-similarity, axis=0, kind="stable")[: self.neighbors]
            pruned = np.zeros_like(similarity)
            columns = np.arange(n_items)[None, :]
            pruned[order, columns] = similarity[order, columns]
            similarity = pruned
        self._interactions = binary
        self._weights = similarity

    def scores(self, users: IntArray) -> FloatArray:
        if self._interactions is None or self._weights is None:
            raise RuntimeError("ItemKNN: fit() before scores()")
        return self._interactions[users] @ self._weights


class EASE(ScoringRecommender):
    """EASE^R (Steck 2019): ``B = I - P diagMat(1 / diag(P))`` with ``P = (X^T X + l2 I)^-1``,
    zero diagonal; ``score = X B`` on the binary matrix ``X``."""

    name = "EASE"

    def __init__(self, l2: float = 500.0) -> None:
        super().__init__()
        if l2 <= 0:
            raise ValueError("l2 must be positive")
        self.l2 = l2
        self._interactions: FloatArray | None = None
        self._weights: FloatArray | None = None

    @property
    def params(self) -> Mapping[str, float]:
        return {"l2": self.l2}

    def _fit(self, train: Interactions) -> None:
        binary = train.binary_matrix()
        gram = binary.T @ binary
        gram[np.diag_indices_from(gram)] += self.l2
        precision = np.linalg.inv(gram)
        weights = precision / -np.diag(precision)[None, :]
        np.fill_diagonal(weights, 0.0)
        self._interactions = binary
        self._weights = weights

    def scores(self, users: IntArray) -> FloatArray:
        if self._interactions is None or self._weights is None:
            raise RuntimeError("EASE: fit() before scores()")
        return self._interactions[users] @ self._weights


class ALS(ScoringRecommender):
    """Implicit-feedback matrix factorisation (Hu, Koren & Volinsky 2008), alternating least
    squares with a few warm-started conjugate-gradient steps per half-iteration (as the
    ``implicit`` library's default solver does, vectorised over all users/items at once).

    Convention of the ``implicit`` library when fed ``alpha * X``: an observed pair has
    preference 1 and confidence ``alpha``, every other pair preference 0 and confidence 1;
    loss ``sum c_ui (p_ui - x_u . y_i)^2 + regularization (|x_u|^2 + |y_i|^2)``.
    """

    name = "ALS"

    def __init__(
        self,
        factors: int = 64,
        regularization: float = 20.0,
        alpha: float = 4.0,
        iterations: int = 15,
        cg_steps: int = 3,
        seed: int = 42,
    ) -> None:
        super().__init__()
        if factors <= 0 or iterations <= 0 or cg_steps <= 0:
            raise ValueError("factors, iterations and cg_steps must be positive")
        if alpha < 1.0:
            raise ValueError("alpha (confidence of an observed pair) must be >= 1")
        self.factors = factors
        self.regularization = regularization
        self.alpha = alpha
        self.iterations = iterations
        self.cg_steps = cg_steps
        self.seed = seed
        self.user_factors: FloatArray | None = None
        self.item_factors: FloatArray | None = None

    @property
    def params(self) -> Mapping[str, float]:
        return {
            "factors": self.factors,
            "regularization": self.regularization,
            "alpha": self.alpha,
            "iterations": self.iterations,
        }

    def _solve(
        self, matrix: Float32Array, fixed: Float32Array, current: Float32Array
    ) -> Float32Array:
        """Rows of ``current`` moved towards argmin given the other side's ``fixed`` factors."""
        gram = fixed.T @ fixed
        gram[np.diag_indices_from(gram)] += self.regularization
        extra = self.alpha - 1.0

        def apply(vectors: Float32Array) -> Float32Array:
            product = vectors @ gram
            if extra:
                product += (extra * ((vectors @ fixed.T) * matrix)) @ fixed
            return product

        solution = current.copy()
        residual = self.alpha * (matrix @ fixed) - apply(solution)
        direction = residual.copy()
        residual_norm = np.einsum("ij,ij->i", residual, residual)
        for _ in range(self.cg_steps):
            applied = apply(direction)
            curvature = np.einsum("ij,ij->i", direction, applied)
            step = np.divide(
                residual_norm, curvature, out=np.zeros_like(curvature), where=curvature > 0
            )
            solution += step[:, None] * direction
            residual -= step[:, None] * applied
            new_norm = np.einsum("ij,ij->i", residual, residual)
            ratio = np.divide(
                new_norm, residual_norm, out=np.zeros_like(new_norm), where=residual_norm > 0
            )
            direction = residual + ratio[:, None] * direction
            residual_norm = new_norm
        return solution

    def _fit(self, train: Interactions) -> None:
        # float32 halves the cost of the dense products; CG tolerates it.
        matrix = train.binary_matrix().astype(np.float32)
        matrix_t = np.ascontiguousarray(matrix.T)
        rng = np.random.default_rng(self.seed)
        users = np.zeros((train.n_users, self.factors), dtype=np.float32)
        items = (rng.random((train.n_items, self.factors)) * 0.01).astype(np.float32)
        for _ in range(self.iterations):
            users = self._solve(matrix, items, users)
            items = self._solve(matrix_t, users, items)
        self.user_factors = users.astype(np.float64)
        self.item_factors = items.astype(np.float64)

    def scores(self, users: IntArray) -> FloatArray:
        if self.user_factors is None or self.item_factors is None:
            raise RuntimeError("ALS: fit() before scores()")
        return self.user_factors[users] @ self.item_factors.T
