"""Fitting the model's parts and tuning them on an inner holdout.

- EASE (Steck 2019) on the binary matrix while the catalog has at most ``ease_max_items`` items
  (a dense item x item matrix: 4 bytes x items²); ALS (the `implicit` library) otherwise, or in
  addition when ``als`` is on (the ranker blends both; its weights are tuned on the inner split).
- Neighbour lists: the top ``neighbors`` items per item, from EASE's weights or from cosine
  similarity of the co-occurrence (computed in blocks, so 100,000 items fit in memory).
- Popularity and trending (time-decayed positives as of the end of the data).
- The feature statistics (FEATURE_SEMANTICS 2): mean and standard deviation of each continuous
  column over the whole-catalog rows of a sample of the training users, fixed in the model.
- The ranker: a LinearRanker whose weights are tuned by nDCG@10 on the inner holdout (a coarse
  grid, then coordinate ascent over every column), over exactly the candidate rows the engine
  builds at request time (retrieval, then those statistics).
- The calibration strength λ of `home` lists (model/calibration.py): the largest value of
  ``calibration_grid`` whose nDCG@10 on the inner holdout is at most ``calibration_tolerance``
  below λ = 0's, with the tuned ranker (candidates scored once, re-ranked per λ).
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import numpy as np
import numpy.typing as npt
import structlog
from implicit.cpu.als import AlternatingLeastSquares
from scipy import sparse
from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

from interaction_recommender.catalog.movie import CatalogMovie
from interaction_recommender.features.state import UserFeatures
from interaction_recommender.model.arrays import (
    FEATURE_NAMES,
    FEATURE_SEMANTICS,
    LinearRanker,
    RecommenderModel,
)
from interaction_recommender.model.catalog_view import CatalogView, build_catalog_view
from interaction_recommender.model.context import Context
from interaction_recommender.model.engine import (
    Candidates,
    EngineSettings,
    calibrated_list,
    calibration_strength,
    candidate_rows,
    feature_statistics,
    score_candidates,
    shortlist_of,
)
from interaction_recommender.model.labels import LabelWeights
from interaction_recommender.settings import Settings
from interaction_recommender.training.dataset import TrainingData, training_data
from interaction_recommender.training.metrics import ranking_metrics

__all__ = [
    "FitConfig",
    "Params",
    "choose_lambda",
    "coordinate_ascent",
    "ease_weights",
    "fit_model",
    "tune",
]

# implicit is imported at module level on purpose: it loads its own BLAS, which the
# threadpool_limits(...) around every fit must see to pin it to `threads` (else implicit warns
# and the default thread pool fights the event loop of a serving process).

log = structlog.get_logger(__name__)

Floats = npt.NDArray[np.float32]


@dataclass(frozen=True)
class FitConfig:
    ease_max_items: int = 5000
    ease_l2_grid: tuple[float, ...] = (100.0, 300.0, 500.0, 1000.0)
    als: bool = True
    als_grid: tuple[tuple[int, float, float], ...] = tuple(
        itertools.product((32, 64), (20.0, 35.0, 50.0), (2.0, 4.0))
    )
    """(factors, regularization, alpha) tried on the inner holdout."""
    als_iterations: int = 15
    neighbors: int = 50
    trending_half_life_days: float = 7.0
    ranker_grid: Mapping[str, tuple[float, ...]] = field(
        default_factory=lambda: {
            "als": (0.0, 0.25, 0.5, 1.0),
            "item_knn": (0.0, 0.25),
            "popularity": (0.0, 0.1, 0.3, 1.0),
            "genre_affinity": (0.0, 0.25),
        }
    )
    """The coarse grid of the ranker's weights (the primary collaborative score has weight 1),
    the start of the coordinate ascent."""
    ranker_steps: tuple[float, ...] = (-0.5, -0.2, -0.1, -0.05, 0.05, 0.1, 0.2, 0.5)
    """The moves the coordinate ascent tries on one weight."""
    ranker_rounds: int = 3
    ranker_min_gain: float = 1e-3
    """The least gain in mean nDCG@10 on the tuning users for a move of the ascent (chosen on
    generated worlds, docs/recommendations.md "The ranker's weights")."""
    tune_users: int = 2000
    """Holdout users sampled for tuning (all when fewer)."""
    statistics_users: int = 300
    """Training users sampled for the feature statistics (all when fewer)."""
    calibration_grid: tuple[float, ...] = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95)
    calibration_tolerance: float = 0.005
    """The nDCG@10 a calibrated list may lose against the ranker's order on the inner holdout."""
    threads: int = 1
    seed: int = 42

    @classmethod
    def from_settings(cls, settings: Settings) -> FitConfig:
        """What `recommender train` fits with."""
        return cls(ease_max_items=settings.ease_max_items, threads=settings.train_threads)


@dataclass(frozen=True)
class Params:
    ease_l2: float | None
    als: tuple[int, float, float] | None
    ranker_weights: dict[str, float]
    configs_tried: int = 0
    calibration_lambda: float = 0.0
    calibration_ndcg: dict[float, float] = field(default_factory=dict)
    """nDCG@10 on the inner holdout per λ tried (empty: not tuned)."""

    def as_dict(self) -> dict[str, Any]:
        return {
            "easeL2": self.ease_l2,
            "als": None
            if self.als is None
            else {"factors": self.als[0], "regularization": self.als[1], "alpha": self.als[2]},
            "rankerWeights": self.ranker_weights,
            "configsTried": self.configs_tried,
            "calibrationLambda": self.calibration_lambda,
        }


def fit_model(
    features: Mapping[UUID, UserFeatures],
    catalog: Sequence[CatalogMovie],
    params: Params,
    labels: LabelWeights,
    config: FitConfig = FitConfig(),
    *,
    version: str,
    ignored: Mapping[UUID, set[UUID]] | None = None,
) -> RecommenderModel:
    """The production fit: every part with the given (tuned) parameters. ``ignored``: user ->
    movies shown and ignored twice (training/impressions.py), weak negatives when
    ``labels.ignored_twice`` is not 0."""
    data = training_data(features, labels, catalog=[m.movie_id for m in catalog], ignored=ignored)
    with threadpool_limits(config.threads):
        model = _fit(data, params, labels, config, version=version)
        return _with_statistics(model, features, catalog, config, data.data_until)


def _fit(
    data: TrainingData, params: Params, labels: LabelWeights, config: FitConfig, *, version: str
) -> RecommenderModel:
    binary = (data.matrix > 0).astype(np.float32).tocsr()
    # Weak negatives (shown and ignored twice) enter the two collaborative fits only: EASE
    # regresses each movie's column on the others, so a negative entry pulls down the weights
    # from what the user liked to what they ignored; implicit's ALS reads a negative value as
    # "not liked, with confidence". Popularity and trending count positives only; the neighbour
    # lists follow EASE's weights when there is an EASE part.
    negatives = data.weak_negatives
    ease_input = binary if negatives is None else (binary + negatives).tocsr()
    als_input = data.matrix if negatives is None else (data.matrix + negatives).tocsr()
    ease = ease_weights(ease_input, params.ease_l2) if params.ease_l2 is not None else None
    factors = _als(als_input, params.als, config) if params.als is not None else None
    if ease is not None:
        neighbors, neighbor_weights = _top_per_row(ease, config.neighbors)
    else:
        neighbors, neighbor_weights = _cosine_neighbors(binary, config.neighbors)
    users_per_item = np.asarray(binary.sum(axis=0)).ravel()
    ranker = LinearRanker(weights=_weight_vector(params.ranker_weights))
    return RecommenderModel(
        version=version,
        item_ids=list(data.items),
        popularity=np.log1p(users_per_item).astype(np.float32),
        trending=_trending(data, config.trending_half_life_days),
        neighbors=neighbors,
        neighbor_weights=neighbor_weights,
        ranker=ranker,
        labels=labels,
        trained_at=datetime.now(UTC),
        data_until=data.data_until,
        ease=ease,
        item_factors=factors,
        calibration_lambda=params.calibration_lambda,
        als_regularization=params.als[1] if params.als else 0.0,
        als_alpha=params.als[2] if params.als else 1.0,
        info={
            "users": len(data.users),
            "items": len(data.items),
            "positives": int(data.matrix.nnz),
            "weakNegatives": int(negatives.nnz) if negatives is not None else 0,
            "dataFrom": data.data_from,
            "dataUntil": data.data_until,
            "params": params.as_dict(),
            "calibration": {
                "ndcgByLambda": {str(k): round(v, 4) for k, v in params.calibration_ndcg.items()},
                "tolerance": config.calibration_tolerance,
            },
        },
    )


def _with_statistics(
    model: RecommenderModel,
    features: Mapping[UUID, UserFeatures],
    catalog: Sequence[CatalogMovie],
    config: FitConfig,
    now: datetime | None,
) -> RecommenderModel:
    """The model with its fixed feature statistics (FEATURE_SEMANTICS), from a deterministic
    sample of the users it was fitted on."""
    users = sorted(features, key=str)
    if len(users) > config.statistics_users:
        rng = np.random.default_rng(config.seed)
        picked = rng.choice(len(users), size=config.statistics_users, replace=False)
        users = [users[i] for i in sorted(picked)]
    view = build_catalog_view(model, catalog, catalog_version=0)
    model.feature_stats = feature_statistics(
        [features[u] for u in users], model, view, now=now or datetime.now(UTC)
    )
    model.feature_semantics = FEATURE_SEMANTICS
    return model


def tune(
    train: Mapping[UUID, UserFeatures],
    test: Mapping[UUID, set[UUID]],
    catalog: Sequence[CatalogMovie],
    labels: LabelWeights,
    config: FitConfig = FitConfig(),
    *,
    now: datetime,
) -> Params:
    """Choose EASE's l2, ALS's parameters and the ranker's weights by nDCG@10 on a holdout
    (train: what users did first; test: what they came to like next)."""
    data = training_data(train, labels, catalog=[m.movie_id for m in catalog])
    eval_users = _sample_users(data, test, config)
    tried = 0
    started = time.perf_counter()
    with threadpool_limits(config.threads):
        binary = (data.matrix > 0).astype(np.float32).tocsr()
        rows = (
            np.array([data.users.index(u) for u in eval_users], dtype=np.int64)
            if eval_users
            else np.zeros(0, np.int64)
        )
        relevant = _relevant(eval_users, test, data)
        seen = binary[rows].toarray() > 0 if rows.size else np.zeros((0, len(data.items)), bool)
        ease_l2: float | None = None
        if len(data.items) <= config.ease_max_items:
            scores_by_l2 = {
                l2: _ndcg(np.asarray(data.matrix[rows] @ ease_weights(binary, l2)), seen, relevant)
                for l2 in config.ease_l2_grid
            }
            tried += len(scores_by_l2)
            ease_l2 = max(scores_by_l2, key=lambda l2: (scores_by_l2[l2], -l2))
        als_params: tuple[int, float, float] | None = None
        if config.als or ease_l2 is None:
            results = {}
            for candidate in config.als_grid:
                factors = _als(data.matrix, candidate, config)
                user_vectors = _fold_in_all(data.matrix[rows], factors, candidate)
                results[candidate] = _ndcg(user_vectors @ factors.T, seen, relevant)
            tried += len(results)
            als_params = max(results, key=lambda c: (results[c], -c[0]))
        base = Params(ease_l2, als_params, {"ease": 1.0} if ease_l2 is not None else {"als": 1.0})
        model = _fit(data, base, labels, config, version="tuning")
        model = _with_statistics(model, train, catalog, config, now)
        view = build_catalog_view(model, catalog, catalog_version=0)
        cases = _tuning_cases(model, view, train, eval_users, test, now)
        weights, ranker_tried = _tune_ranker(model, cases, config)
        by_lambda = _calibration_ndcg(model, view, cases, weights, config.calibration_grid)
    strength = choose_lambda(by_lambda, config.calibration_tolerance)
    log.info(
        "tuned",
        seconds=round(time.perf_counter() - started, 1),
        ease_l2=ease_l2,
        als=als_params,
        ranker=weights,
        calibration_lambda=strength,
    )
    return Params(
        ease_l2,
        als_params,
        weights,
        configs_tried=tried + ranker_tried + len(by_lambda),
        calibration_lambda=strength,
        calibration_ndcg=by_lambda,
    )


@dataclass(frozen=True)
class _Case:
    """One tuning user: the engine's candidates for `home` and which of them they came to like."""

    candidates: Candidates
    hits: npt.NDArray[np.bool_]


def _tuning_cases(
    model: RecommenderModel,
    view: CatalogView,
    train: Mapping[UUID, UserFeatures],
    users: Sequence[UUID],
    test: Mapping[UUID, set[UUID]],
    now: datetime,
) -> list[_Case]:
    cases = []
    for user in users:
        c = candidate_rows(
            train[user], Context("home"), model, view, now=now, settings=EngineSettings()
        )
        hits = np.array([view.ids[i] in test[user] for i in c.pool], dtype=np.bool_)
        if hits.any():
            cases.append(_Case(c, hits))
    return cases


def _tune_ranker(
    model: RecommenderModel, cases: Sequence[_Case], config: FitConfig
) -> tuple[dict[str, float], int]:
    """The ranker's weights: the best point of the coarse grid, refined by coordinate ascent
    (Metzler and Croft, "Linear feature-based models for information retrieval", 2007) over
    every column's weight, by mean nDCG@10 over the tuning users. The primary collaborative
    score keeps weight 1 (the scale is free: only the order matters before calibration, which
    standardises the logits)."""
    primary = "ease" if model.ease is not None else "als"
    absent = {"ease"} if model.ease is None else set()
    if model.item_factors is None:
        absent.add("als")
    grid = {n: v for n, v in config.ranker_grid.items() if n != primary and n not in absent}
    best: tuple[float, dict[str, float]] = (-1.0, {primary: 1.0})
    names = list(grid)
    combos = list(itertools.product(*(grid[n] for n in names)))
    for combo in combos:
        weights = {primary: 1.0, **dict(zip(names, combo, strict=True))}
        score = _ranker_ndcg(cases, weights)
        if score > best[0] + 1e-9:
            best = (score, weights)
    free = [n for n in FEATURE_NAMES if n != primary and n not in absent]
    weights, steps = coordinate_ascent(
        lambda w: _ranker_ndcg(cases, w), best[1], best[0], free, config
    )
    return weights, len(combos) + steps


def coordinate_ascent(
    objective: Callable[[dict[str, float]], float],
    weights: dict[str, float],
    score: float,
    names: Sequence[str],
    config: FitConfig,
) -> tuple[dict[str, float], int]:
    """Maximise ``objective`` from ``weights`` (whose value is ``score``): each round moves each
    weight of ``names`` in turn by its best step of ``config.ranker_steps`` when that gains more
    than ``config.ranker_min_gain`` (a floor against fitting the tuning users' noise); stops
    after a round without a move or after ``config.ranker_rounds``. Returns the weights and
    the number of evaluations."""
    tried = 0
    for _ in range(config.ranker_rounds):
        moved = False
        for name in names:
            trials = {
                step: objective({**weights, name: round(weights.get(name, 0.0) + step, 4)})
                for step in config.ranker_steps
            }
            tried += len(trials)
            step = max(trials, key=lambda s: (trials[s], -abs(s)))
            if trials[step] > score + config.ranker_min_gain:
                weights = {**weights, name: round(weights.get(name, 0.0) + step, 4)}
                score, moved = trials[step], True
        if not moved:
            break
    return weights, tried


def _ranker_ndcg(cases: Sequence[_Case], weights: Mapping[str, float]) -> float:
    """Mean nDCG@10 of the ranker's order over the tuning users (0 without any)."""
    if not cases:
        return 0.0
    vector = _weight_vector(weights)
    return float(np.mean([_ndcg_one(c.candidates.rows @ vector, c.hits) for c in cases]))


def _calibration_ndcg(
    model: RecommenderModel,
    view: CatalogView,
    cases: Sequence[_Case],
    weights: Mapping[str, float],
    grid: Sequence[float],
) -> dict[float, float]:
    """nDCG@10 of the engine's `home` list per calibration strength, the ranker's scores and
    shortlist computed once per user."""
    if not cases:
        return {}
    model = replace(model, ranker=LinearRanker(weights=_weight_vector(weights)))
    home = Context("home")
    totals = dict.fromkeys(grid, 0.0)
    for case in cases:
        c = case.candidates
        scores = score_candidates(c, home, model, EngineSettings())
        shortlist = shortlist_of(c.pool, scores, 10)
        ideal = _ideal_dcg(int(case.hits.sum()))
        for strength in grid:
            settings = EngineSettings(calibration_lambda=strength)
            positions = shortlist[
                calibrated_list(
                    shortlist, scores, 10, c, view, calibration_strength(home, c, model, settings)
                )
            ]
            totals[strength] += float(case.hits[positions] @ _DISCOUNTS[: positions.size]) / ideal
    return {strength: total / len(cases) for strength, total in totals.items()}


def choose_lambda(ndcg_by_lambda: Mapping[float, float], tolerance: float) -> float:
    """The largest λ whose nDCG is at most ``tolerance`` below λ = 0's (0 when not tuned)."""
    if 0.0 not in ndcg_by_lambda:
        return 0.0
    floor = ndcg_by_lambda[0.0] - tolerance
    return max(s for s, ndcg in ndcg_by_lambda.items() if ndcg >= floor - 1e-12)


def _weight_vector(weights: Mapping[str, float]) -> Floats:
    return np.array([weights.get(n, 0.0) for n in FEATURE_NAMES], np.float32)


_DISCOUNTS = 1.0 / np.log2(np.arange(2, 12))


def _ideal_dcg(relevant: int) -> float:
    return float(_DISCOUNTS[: min(relevant, 10)].sum())


def ease_weights(matrix: sparse.csr_matrix, l2: float) -> Floats:
    """EASE's item-item weights (Steck 2019) from ``matrix`` (binary or weighted)."""
    gram = (matrix.T @ matrix).toarray().astype(np.float64)
    gram[np.diag_indices_from(gram)] += l2
    precision = np.linalg.inv(gram)
    weights = precision / -np.diag(precision)[None, :]
    np.fill_diagonal(weights, 0.0)
    result: Floats = weights.astype(np.float32)
    return result


def _als(matrix: sparse.csr_matrix, params: tuple[int, float, float], config: FitConfig) -> Floats:
    n_factors, regularization, alpha = params
    model = AlternatingLeastSquares(
        factors=n_factors,
        regularization=regularization,
        alpha=alpha,
        iterations=config.als_iterations,
        random_state=config.seed,
        num_threads=config.threads,
    )
    model.fit(matrix.astype(np.float32).tocsr(), show_progress=False)
    factors: Floats = np.asarray(model.item_factors, dtype=np.float32)
    return factors


def _fold_in_all(
    user_items: sparse.csr_matrix, factors: Floats, params: tuple[int, float, float]
) -> Floats:
    """Each user's ALS vector from their labels, the way the engine folds a user in."""
    _, regularization, alpha = params
    gram = factors.T @ factors + np.eye(factors.shape[1], dtype=np.float32) * regularization
    vectors = np.zeros((user_items.shape[0], factors.shape[1]), dtype=np.float32)
    for u in range(user_items.shape[0]):
        start, end = user_items.indptr[u], user_items.indptr[u + 1]
        items, weights = user_items.indices[start:end], user_items.data[start:end]
        if items.size == 0:
            continue
        y = factors[items]
        confidence = 1.0 + alpha * weights
        a = gram + y.T @ (y * (confidence - 1.0)[:, None])
        vectors[u] = np.linalg.solve(a, y.T @ confidence)
    return vectors


def _top_per_row(weights: Floats, k: int) -> tuple[npt.NDArray[np.int32], Floats]:
    k = min(k, max(weights.shape[1] - 1, 1))
    top = np.argpartition(-weights, k - 1, axis=1)[:, :k]
    values = np.take_along_axis(weights, top, axis=1)
    order = np.argsort(-values, axis=1, kind="stable")
    top, values = np.take_along_axis(top, order, axis=1), np.take_along_axis(values, order, axis=1)
    top = np.where(values > 0, top, -1)
    return top.astype(np.int32), np.where(values > 0, values, 0.0).astype(np.float32)


def _cosine_neighbors(
    binary: sparse.csr_matrix, k: int, block: int = 256
) -> tuple[npt.NDArray[np.int32], Floats]:
    """Top-k cosine neighbours of every item over the co-occurrence, a block of items at a time
    (memory: block x items floats)."""
    columns = sparse.csc_matrix(binary)
    norms = np.sqrt(np.asarray(columns.power(2).sum(axis=0)).ravel())
    normalised = columns @ sparse.diags(1.0 / np.maximum(norms, 1e-9))
    n = binary.shape[1]
    k = min(k, max(n - 1, 1))
    neighbors = np.full((n, k), -1, dtype=np.int32)
    weights = np.zeros((n, k), dtype=np.float32)
    transposed = normalised.T.tocsr()
    for start in range(0, n, block):
        stop = min(start + block, n)
        similarity = (transposed[start:stop] @ normalised).toarray().astype(np.float32)
        similarity[np.arange(stop - start), np.arange(start, stop)] = 0.0
        top, values = _top_per_row(similarity, k)
        neighbors[start:stop] = top
        weights[start:stop] = values
    return neighbors, weights


def _trending(data: TrainingData, half_life_days: float) -> Floats:
    scores = np.zeros(len(data.items), dtype=np.float32)
    if data.data_until is None or data.matrix.nnz == 0:
        return scores
    age_days = (data.data_until.timestamp() - data.times) / 86400.0
    decay = np.power(0.5, np.maximum(age_days, 0.0) / half_life_days).astype(np.float32)
    np.add.at(scores, data.matrix.indices, decay)
    return np.log1p(scores).astype(np.float32)


def _sample_users(
    data: TrainingData, test: Mapping[UUID, set[UUID]], config: FitConfig
) -> list[UUID]:
    known = set(data.users)
    users = sorted((u for u in test if u in known), key=str)
    if len(users) > config.tune_users:
        rng = np.random.default_rng(config.seed)
        picked = rng.choice(len(users), size=config.tune_users, replace=False)
        users = [users[i] for i in sorted(picked)]
    return users


def _relevant(
    users: Sequence[UUID], test: Mapping[UUID, set[UUID]], data: TrainingData
) -> npt.NDArray[np.bool_]:
    index = data.item_index
    mask = np.zeros((len(users), len(data.items)), dtype=np.bool_)
    for row, user in enumerate(users):
        mask[row, [index[m] for m in test[user] if m in index]] = True
    return mask


def _ndcg(
    scores: npt.NDArray[Any], seen: npt.NDArray[np.bool_], relevant: npt.NDArray[np.bool_]
) -> float:
    if relevant.shape[0] == 0:
        return 0.0
    scores = np.where(seen, -np.inf, scores)
    top = np.argsort(-scores, axis=1, kind="stable")[:, :10]
    return float(ranking_metrics(top, relevant, k=10).means().ndcg)


def _ndcg_one(scores: Floats, hits: npt.NDArray[np.bool_]) -> float:
    k = min(10, scores.size)
    top = np.argpartition(-scores, k - 1)[:k]
    top = top[np.argsort(-scores[top], kind="stable")]
    gains = hits[top] / np.log2(np.arange(2, k + 2))
    ideal = (1.0 / np.log2(np.arange(2, min(int(hits.sum()), 10) + 2))).sum()
    return float(gains.sum() / ideal) if ideal > 0 else 0.0
