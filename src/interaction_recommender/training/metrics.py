"""Top-k ranking metrics per user, user-bootstrap intervals and paired differences.

Definitions follow Microsoft Recommenders' ``recommenders/evaluation/python_evaluation.py``
with binary relevance (a test interaction is relevant, nothing else is), computed per user and
then averaged over the evaluated users (every user with at least one test interaction):

* ``precision@k = hits@k / k`` (``k`` even when fewer than ``k`` items were recommended);
* ``recall@k = hits@k / |relevant|``;
* ``nDCG@k = DCG / IDCG`` with ``DCG = sum over hits of 1 / log(1 + rank)`` and ``IDCG`` the
  same sum over ranks ``1..min(|relevant|, k)`` (the log base cancels);
* ``AP = (sum over hits at rank r of hits@r / r) / |relevant|`` — Recommenders' ``map``
  (formerly ``map_at_k``), normalised by all relevant items, *not* by ``min(|relevant|, k)``
  as the newer ``map_at_k`` does. This is the definition that reproduces SAR's published
  MAP 0.114038 on this protocol; MAP is the mean of AP over users.

A recommendation list is a row of item indices, best first; ``-1`` pads a short list.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from interaction_recommender.model.calibration import SMOOTHING

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

METRIC_NAMES = ("ndcg", "precision", "recall", "map")


@dataclass(frozen=True)
class MetricMeans:
    """Means over users: nDCG@k, Precision@k, Recall@k and MAP."""

    ndcg: float
    precision: float
    recall: float
    map: float


@dataclass(frozen=True, eq=False)
class PerUserMetrics:
    """One value per evaluated user for each metric (aligned with ``users``)."""

    users: IntArray
    ndcg: FloatArray
    precision: FloatArray
    recall: FloatArray
    average_precision: FloatArray
    k: int

    def means(self) -> MetricMeans:
        return MetricMeans(
            ndcg=float(self.ndcg.mean()),
            precision=float(self.precision.mean()),
            recall=float(self.recall.mean()),
            map=float(self.average_precision.mean()),
        )


@dataclass(frozen=True, eq=False)
class ListMetrics:
    """What a model's lists are like, beyond their hits: per evaluated user the miscalibration
    (KL divergence between the user's genre distribution in train and the list's, smoothed as
    model/calibration.py smooths it), and over all lists the catalog coverage (the share of
    items recommended to at least one user)."""

    miscalibration: FloatArray
    coverage: float

    @property
    def mean_miscalibration(self) -> float:
        return float(self.miscalibration.mean()) if self.miscalibration.size else float("nan")


def list_metrics(
    recommended: IntArray,
    history: BoolArray,
    item_genres: npt.NDArray[np.float32],
    catalog: FloatArray,
    k: int = 10,
) -> ListMetrics:
    """``history[u]``: the user's train items (a mask over items); ``item_genres``: each item's
    genre distribution and ``catalog`` the catalog's (model/calibration.py ``split_genres``,
    ``genre_distribution``). A user whose history has no genre mass counts 0 (nothing to be
    calibrated to)."""
    top = recommended[:, :k]
    valid = top >= 0
    target = history.astype(np.float64) @ item_genres.astype(np.float64)
    mass = target.sum(axis=1, keepdims=True)
    target = np.divide(target, mass, out=np.zeros_like(target), where=mass > 0)
    listed = np.where(valid[:, :, None], item_genres[np.maximum(top, 0)], 0.0).sum(axis=1)
    lengths = np.maximum(valid.sum(axis=1, keepdims=True), 1)
    smoothed = (1 - SMOOTHING) * listed / lengths + SMOOTHING * catalog
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(target > 0, target * np.log(target / smoothed), 0.0)
    distinct = np.unique(top[valid]).size
    return ListMetrics(terms.sum(axis=1), distinct / item_genres.shape[0])


@dataclass(frozen=True)
class Interval:
    """A point estimate with a percentile-bootstrap confidence interval."""

    estimate: float
    low: float
    high: float
    confidence: float

    def __contains__(self, value: float) -> bool:
        return self.low <= value <= self.high


def relevance_from_lists(relevant: list[list[int]], n_items: int) -> BoolArray:
    """Dense ``len(relevant) x n_items`` relevance mask from per-user item lists."""
    mask = np.zeros((len(relevant), n_items), dtype=np.bool_)
    for row, items in enumerate(relevant):
        mask[row, items] = True
    return mask


def check_recommendations(recommended: IntArray, n_items: int) -> None:
    """Raise ValueError unless every row holds distinct item indices in ``[0, n_items)``,
    with ``-1`` allowed only as trailing padding."""
    if recommended.ndim != 2:
        raise ValueError("recommendations must be a 2-D array (users x ranks)")
    if not np.issubdtype(recommended.dtype, np.integer):
        raise ValueError(f"recommendations must be integer item indices, not {recommended.dtype}")
    if recommended.size == 0:
        return
    if int(recommended.min()) < -1 or int(recommended.max()) >= n_items:
        raise ValueError(f"recommended item index out of range [0, {n_items})")
    padding = recommended < 0
    if np.any(padding[:, :-1] & ~padding[:, 1:]):
        raise ValueError("-1 padding may only follow the recommended items")
    ordered = np.sort(np.where(padding, -1 - np.arange(recommended.shape[1]), recommended), axis=1)
    if np.any(ordered[:, 1:] == ordered[:, :-1]):
        raise ValueError("a user's recommendations contain the same item twice")


def ranking_metrics(
    recommended: IntArray, relevant: BoolArray, k: int = 10, users: IntArray | None = None
) -> PerUserMetrics:
    """Per-user nDCG@k, Precision@k, Recall@k and AP of ranked lists.

    ``recommended[u]`` is user row ``u``'s list (best first, at least ``k`` columns or padded
    with ``-1``; columns beyond ``k`` are ignored); ``relevant[u]`` is that user's relevance
    mask over all items and must contain at least one item. ``users`` only labels the rows.
    """
    if k <= 0:
        raise ValueError("k must be positive")
    if recommended.shape[0] != relevant.shape[0]:
        raise ValueError("one recommendation row per relevance row is required")
    top = recommended[:, :k]
    check_recommendations(top, relevant.shape[1])
    n_relevant = relevant.sum(axis=1).astype(np.float64)
    if np.any(n_relevant == 0):
        raise ValueError("every evaluated user needs at least one relevant item")
    rows = np.arange(top.shape[0])[:, None]
    hits = np.where(top >= 0, relevant[rows, np.maximum(top, 0)], False).astype(np.float64)
    if hits.shape[1] < k:  # a list shorter than k: the missing ranks are misses
        hits = np.pad(hits, ((0, 0), (0, k - hits.shape[1])))
    ranks = np.arange(1, k + 1, dtype=np.float64)
    discounts = 1.0 / np.log2(ranks + 1.0)
    dcg = hits @ discounts
    ideal = np.cumsum(discounts)[np.minimum(n_relevant, k).astype(np.int64) - 1]
    n_hits = hits.sum(axis=1)
    precision_at_hit = np.cumsum(hits, axis=1) / ranks
    return PerUserMetrics(
        users=(
            np.arange(top.shape[0], dtype=np.int64) if users is None else users.astype(np.int64)
        ),
        ndcg=dcg / ideal,
        precision=n_hits / k,
        recall=n_hits / n_relevant,
        average_precision=(hits * precision_at_hit).sum(axis=1) / n_relevant,
        k=k,
    )


def _percentile_interval(
    values: FloatArray, n_resamples: int, confidence: float, seed: int
) -> Interval:
    if values.ndim != 1 or len(values) == 0:
        raise ValueError("need a non-empty 1-D array of per-user values")
    if not 0.0 < confidence < 1.0:
        raise ValueError("confidence must be in (0, 1)")
    if n_resamples <= 0:
        raise ValueError("n_resamples must be positive")
    rng = np.random.default_rng(seed)
    n = len(values)
    means = np.empty(n_resamples, dtype=np.float64)
    chunk = max(1, 2_000_000 // n)
    for start in range(0, n_resamples, chunk):
        stop = min(n_resamples, start + chunk)
        means[start:stop] = values[rng.integers(0, n, size=(stop - start, n))].mean(axis=1)
    tail = (1.0 - confidence) / 2.0 * 100.0
    low, high = np.percentile(means, [tail, 100.0 - tail])
    return Interval(float(values.mean()), float(low), float(high), confidence)


def bootstrap_interval(
    values: FloatArray, *, n_resamples: int = 1000, confidence: float = 0.95, seed: int = 0
) -> Interval:
    """Mean of per-user ``values`` with a percentile bootstrap interval (users resampled)."""
    return _percentile_interval(np.asarray(values, dtype=np.float64), n_resamples, confidence, seed)


def paired_difference(
    values: FloatArray,
    baseline: FloatArray,
    *,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> Interval:
    """Mean of ``values - baseline`` (same users, same order) with a bootstrap interval.

    Resampling the per-user differences resamples users jointly for both models, so the
    interval reflects the paired design (much narrower than two independent intervals).
    """
    a = np.asarray(values, dtype=np.float64)
    b = np.asarray(baseline, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError("paired values must have the same shape")
    return _percentile_interval(a - b, n_resamples, confidence, seed)
