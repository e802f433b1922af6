"""The recommendation engine: one pure entry point, ``recommend``, that the API calls unchanged.

    sources (history-based EASE/ALS/neighbours, popularity, trending, genres, new releases,
    search keywords; or a movie's neighbours for `similar`/`detail`)
      -> filters (watched to completion, rated, disliked, unavailable, the anchor movie)
      -> scoring: the ranker's predict_proba over one FEATURE_NAMES row per candidate
      -> re-rank for diversity (a cap per primary genre, deterministic)
      -> top k, each with reasons from model/reasons.py

Everything heavy was prepared at training time (arrays.py) or when the catalog changed
(catalog_view.py); a call is a few vectorised numpy operations over the catalog. Events act
without retraining: the history comes from the user's streaming features.

Timing hooks: ``recommend`` and ``candidate_rows`` take an optional ``laps`` (a ``StageLaps``)
that is told when each of ``STAGES`` ends; the default does nothing. bench/engine.py uses it for
its per-stage split, so the benchmark times this code and no copy of it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from uuid import UUID

import numpy as np
import numpy.typing as npt

from interaction_recommender.features.state import UserFeatures, genre_affinity_at
from interaction_recommender.model import reasons as r
from interaction_recommender.model.arrays import FEATURE_NAMES, RecommenderModel
from interaction_recommender.model.catalog_view import CatalogView, keywords_of
from interaction_recommender.model.context import Context
from interaction_recommender.model.labels import user_labels

__all__ = [
    "STAGES",
    "Candidates",
    "EngineSettings",
    "Recommendation",
    "StageLaps",
    "candidate_rows",
    "recommend",
]

Floats = npt.NDArray[np.float32]
_COLUMN = {name: i for i, name in enumerate(FEATURE_NAMES)}
_FLAGS = frozenset({"new_release", "search_match", "genre_affinity"})
_CONTINUOUS = np.array([i for name, i in _COLUMN.items() if name not in _FLAGS])
_MAX_REASONS = 3

STAGES = (
    "user state",  # _UserState.of: labels, exclusions (Python over the history)
    "EASE",  # weights @ ease[history]
    "ALS",  # fold-in solve + item_factors @ u
    "kNN",  # neighbour contributions, np.add.at
    "genre affinity",  # genre_affinity_at, genre_matrix @ v / genre_counts
    "other columns",  # zeros (items x 8), popularity, trending, new release, search match
    "filter",  # available & ~excluded (& related to the anchor), flatnonzero
    "standardise",  # columns[pool], per-column mean/std
    "score",  # the ranker (+ the search boost)
    "top k",  # argpartition, lexsort, the genre cap
    "position map",  # the k chosen items' rows: searchsorted over the (sorted) pool
    "reasons",  # _reasons_for the k items, Recommendation objects
)
"""The engine's stages, in call order, as ``StageLaps`` reports them."""


class _NoLaps:
    """The default: timing off (a method call per stage, nothing else)."""

    def lap(self, stage: str) -> None:
        pass


@dataclass
class StageLaps:
    """Nanoseconds spent per stage, summed over the calls it was passed to. The clock starts
    when the object is made or ``restart`` is called; each ``lap`` charges the time since the
    previous one to its stage."""

    clock: Callable[[], int] = time.perf_counter_ns
    spent: dict[str, int] = field(default_factory=dict)
    _last: int = 0

    def __post_init__(self) -> None:
        self._last = self.clock()

    def restart(self) -> None:
        self._last = self.clock()

    def lap(self, stage: str) -> None:
        now = self.clock()
        self.spent[stage] = self.spent.get(stage, 0) + now - self._last
        self._last = now


_NO_LAPS = _NoLaps()
Laps = StageLaps | _NoLaps


@dataclass(frozen=True, slots=True)
class Recommendation:
    movie_id: UUID
    score: float
    reasons: tuple[str, ...]


@dataclass(frozen=True)
class EngineSettings:
    diversity: bool = True
    """Re-rank so that no primary genre takes more than ``genre_cap`` of the list."""
    genre_cap: float = 0.4
    new_release_years: int = 1
    """Released this year or up to this many years before: a new release."""
    search_boost: float = 3.0
    """`search` context: added to a matching movie's logit."""
    recent_searches: int = 5


def recommend(
    features: UserFeatures | None,
    context: Context,
    k: int,
    model: RecommenderModel,
    view: CatalogView,
    *,
    now: datetime,
    settings: EngineSettings = EngineSettings(),
    laps: Laps = _NO_LAPS,
) -> list[Recommendation]:
    candidates = candidate_rows(
        features, context, model, view, now=now, settings=settings, laps=laps
    )
    if candidates.pool.size == 0:
        return []
    personal = candidates.state.history.size or candidates.anchor is not None
    if personal and model.personalised:
        scores = _score(model, candidates.rows)
    else:
        # Nothing to personalise from (no history, or a popularity-only fallback model): the
        # cold-start policy, popular and trending movies (the ranker was tuned on users with a
        # history; it may weigh popularity at 0).
        rows = candidates.rows
        scores = rows[:, _COLUMN["popularity"]] + rows[:, _COLUMN["trending"]]
        scores = scores + rows[:, _COLUMN["genre_affinity"]]
    if context.kind == "search":
        boost = np.float32(settings.search_boost)
        scores = scores + boost * candidates.rows[:, _COLUMN["search_match"]]
    laps.lap("score")
    chosen = _top(candidates.pool, scores, k, view, settings)
    laps.lap("top k")
    # The pool is sorted (flatnonzero), so each chosen item's row is found by binary search
    # instead of a dict over the whole pool (which cost 60% of a call at 100,000 movies).
    picked = np.asarray(chosen, dtype=np.int64)
    positions = np.searchsorted(candidates.pool, picked)
    laps.lap("position map")
    rows = candidates.rows[positions]
    reasons = _reasons_for(picked, rows, candidates, model, view, features, now)
    answer = [
        Recommendation(
            movie_id=view.ids[item],
            score=_probability(float(scores[at])),
            reasons=why,
        )
        for item, at, why in zip(chosen, positions.tolist(), reasons, strict=True)
    ]
    laps.lap("reasons")
    return answer


@dataclass
class Candidates:
    """The items that may be recommended, with their ranker input rows (FEATURE_NAMES)."""

    pool: npt.NDArray[np.int64]
    rows: Floats
    state: _UserState
    anchor: int | None


def candidate_rows(
    features: UserFeatures | None,
    context: Context,
    model: RecommenderModel,
    view: CatalogView,
    *,
    now: datetime,
    settings: EngineSettings = EngineSettings(),
    laps: Laps = _NO_LAPS,
) -> Candidates:
    """Sources and filters: every recommendable item and its feature row. Training tunes the
    ranker on exactly these rows."""
    state = _UserState.of(features, model, view)
    laps.lap("user state")
    anchor = view.index.get(context.movie_id) if context.movie_id else None
    columns = _feature_columns(state, features, context, anchor, model, view, now, settings, laps)
    allowed = view.available & ~state.excluded
    if anchor is not None:
        allowed[anchor] = False
        allowed &= _related_to(anchor, model, view)
    pool = np.flatnonzero(allowed)
    laps.lap("filter")
    candidates = Candidates(pool, _standardised(columns, pool), state, anchor)
    laps.lap("standardise")
    return candidates


@dataclass
class _UserState:
    history: npt.NDArray[np.int64]
    """Model item indices the user liked, strongest last."""
    weights: Floats
    excluded: npt.NDArray[np.bool_]
    """Watched to completion, rated or disliked: never recommended."""

    @classmethod
    def of(
        cls, features: UserFeatures | None, model: RecommenderModel, view: CatalogView
    ) -> _UserState:
        excluded = np.zeros(view.n_items, dtype=np.bool_)
        if features is None:
            return cls(np.zeros(0, np.int64), np.zeros(0, np.float32), excluded)
        labels = user_labels(features, model.labels)
        done = set(features.seen) | set(features.ratings)
        done |= {m for m, e in features.watch_history.items() if e.completed}
        done |= {m for m, w in labels.items() if w < 0}
        for movie_id in done:
            i = view.index.get(movie_id)
            if i is not None:
                excluded[i] = True
        liked = sorted((w, model.index[m]) for m, w in labels.items() if w > 0 and m in model.index)
        history = np.array([i for _, i in liked], dtype=np.int64)
        weights = np.array([w for w, _ in liked], dtype=np.float32)
        return cls(history, weights, excluded)


def _feature_columns(
    state: _UserState,
    features: UserFeatures | None,
    context: Context,
    anchor: int | None,
    model: RecommenderModel,
    view: CatalogView,
    now: datetime,
    settings: EngineSettings,
    laps: Laps = _NO_LAPS,
) -> Floats:
    """One column per FEATURE_NAMES entry over every item of the view (0 for items the model
    does not know)."""
    n, nm = view.n_items, view.n_model
    columns = np.zeros((n, len(FEATURE_NAMES)), dtype=np.float32)
    if anchor is not None and anchor < nm:
        # similar/detail: the anchor movie plays the history's part.
        history, weights = np.array([anchor]), np.ones(1, dtype=np.float32)
    else:
        history, weights = state.history, state.weights
    laps.lap("other columns")
    if history.size:
        if model.ease is not None:
            columns[:nm, _COLUMN["ease"]] = weights @ model.ease[history]
        laps.lap("EASE")
        if model.item_factors is not None:
            columns[:nm, _COLUMN["als"]] = model.item_factors @ _fold_in(model, history, weights)
        laps.lap("ALS")
        knn = np.zeros(nm, dtype=np.float32)
        neighbors = model.neighbors[history]
        contributions = model.neighbor_weights[history] * weights[:, None]
        valid = neighbors >= 0
        np.add.at(knn, neighbors[valid], contributions[valid])
        columns[:nm, _COLUMN["item_knn"]] = knn
        laps.lap("kNN")
    columns[:nm, _COLUMN["popularity"]] = model.popularity
    columns[:nm, _COLUMN["trending"]] = model.trending
    laps.lap("other columns")
    if features is not None and view.genres:
        affinity = genre_affinity_at(features, now)
        vector = np.array([max(affinity.get(g, 0.0), 0.0) for g in view.genres], np.float32)
        if vector.max(initial=0.0) > 0:
            columns[:, _COLUMN["genre_affinity"]] = (
                view.genre_matrix @ (vector / vector.max())
            ) / view.genre_counts
    laps.lap("genre affinity")
    columns[:, _COLUMN["new_release"]] = view.release_year >= now.year - settings.new_release_years
    for word in _search_keywords(features, settings):
        items = view.keyword_items.get(word)
        if items is not None:
            columns[items, _COLUMN["search_match"]] = 1.0
    laps.lap("other columns")
    return columns


def _fold_in(model: RecommenderModel, history: npt.NDArray[np.int64], weights: Floats) -> Floats:
    """The user's ALS vector from their history (one implicit-ALS least-squares step)."""
    assert model.item_factors is not None
    factors = model.item_factors[history]
    confidence = 1.0 + np.float32(model.als_alpha) * weights
    a = model.gram + factors.T @ (factors * (confidence - 1.0)[:, None])
    b = factors.T @ confidence
    return np.linalg.solve(a, b).astype(np.float32)


def _related_to(anchor: int, model: RecommenderModel, view: CatalogView) -> npt.NDArray[np.bool_]:
    """`similar`/`detail` candidates: the anchor's neighbours and movies of its primary genre."""
    related = np.zeros(view.n_items, dtype=np.bool_)
    if anchor < view.n_model:
        neighbours = model.neighbors[anchor]
        related[neighbours[neighbours >= 0]] = True
    genre = view.primary_genre[anchor]
    if genre >= 0:
        related |= view.genre_matrix[:, genre] > 0
    return related


def _standardised(columns: Floats, pool: npt.NDArray[np.int64]) -> Floats:
    """The candidates' rows, continuous columns standardised over the candidates (so that the
    ranker sees the same scale whatever the user's history length). All continuous columns in
    one pass: a loop over strided columns cost a quarter of a call at 10,000 movies."""
    rows = columns[pool]
    if pool.size == 0:
        return rows
    block = rows[:, _CONTINUOUS]
    mean = block.mean(axis=0)
    std = block.std(axis=0)
    spread = std > 1e-9
    rows[:, _CONTINUOUS] = np.where(spread, (block - mean) / np.where(spread, std, 1.0), 0.0)
    return rows


def _score(model: RecommenderModel, rows: Floats) -> Floats:
    """The ranker's score as a logit-like number (monotonic in its probability)."""
    ranker = model.ranker
    scores: Floats
    if hasattr(ranker, "decision_function"):
        scores = np.asarray(ranker.decision_function(rows), dtype=np.float32)
    elif hasattr(ranker, "predict_proba"):
        p = np.clip(np.asarray(ranker.predict_proba(rows))[:, 1], 1e-7, 1 - 1e-7)
        scores = np.log(p / (1 - p)).astype(np.float32)
    else:
        scores = np.asarray(ranker.predict(rows), dtype=np.float32)
    return scores


def _probability(logit: float) -> float:
    return 1.0 / (1.0 + math.exp(-max(min(logit, 50.0), -50.0)))


def _top(
    pool: npt.NDArray[np.int64],
    scores: Floats,
    k: int,
    view: CatalogView,
    settings: EngineSettings,
) -> list[int]:
    """The best k, best first; ties by catalog order (deterministic). With diversity on, a
    primary genre may take at most ``genre_cap`` of the k places while others can fill them."""
    take = min(pool.size, max(k * 4, k + 50))
    best = np.argpartition(-scores, take - 1)[:take] if take < pool.size else np.arange(pool.size)
    ordered = best[np.lexsort((pool[best], -scores[best]))]
    items = [int(pool[i]) for i in ordered]
    if not settings.diversity:
        return items[:k]
    cap = max(1, math.ceil(k * settings.genre_cap))
    per_genre: dict[int, int] = {}
    chosen, skipped = [], []
    for item in items:
        genre = int(view.primary_genre[item])
        if genre >= 0 and per_genre.get(genre, 0) >= cap:
            skipped.append(item)
            continue
        per_genre[genre] = per_genre.get(genre, 0) + 1
        chosen.append(item)
        if len(chosen) == k:
            return chosen
    return (chosen + skipped)[:k]


def _search_keywords(features: UserFeatures | None, settings: EngineSettings) -> list[str]:
    if features is None:
        return []
    recent = features.searches[-settings.recent_searches :]
    return list(dict.fromkeys(w for s in reversed(recent) for w in keywords_of(s.query)))


def _reasons_for(
    chosen: npt.NDArray[np.int64],
    rows: Floats,
    candidates: Candidates,
    model: RecommenderModel,
    view: CatalogView,
    features: UserFeatures | None,
    now: datetime,
) -> list[tuple[str, ...]]:
    """Why each chosen item: the features that pushed it up, named from the fixed vocabulary.
    What every item shares (search keywords, genre affinity, the history's contributions) is
    computed once per call."""
    state, anchor = candidates.state, candidates.anchor
    personal = anchor is None and state.history.size > 0
    sources = _strongest_history_items(chosen, state, model, view) if personal else {}
    keywords = _search_keywords(features, EngineSettings())
    affinity = genre_affinity_at(features, now) if features is not None else {}
    result = []
    for item, row in zip(chosen.tolist(), rows, strict=True):
        found: list[str] = []
        if anchor is not None:
            found.append(r.similar_to(view.ids[anchor]))
        collaborative = row[_COLUMN["ease"]] + row[_COLUMN["als"]] + row[_COLUMN["item_knn"]]
        if personal and collaborative > 0 and item < view.n_model:
            source = sources.get(item)
            if source is not None:
                found.append(r.because_you_watched(view.ids[source]))
            found.append(r.COLLABORATIVE)
        if row[_COLUMN["search_match"]] > 0:
            words = [w for w in keywords if _has_keyword(view, w, item)]
            if words:
                found.append(r.matches_search(words[0]))
        if row[_COLUMN["genre_affinity"]] > 0 and affinity:
            genre = _favourite_genre_of(item, view, affinity)
            if genre is not None:
                found.append(r.matches_genre(genre))
        if row[_COLUMN["new_release"]] > 0:
            found.append(r.NEW_RELEASE)
        if not found or (anchor is None and not state.history.size):
            # Popularity explains an item only when nothing personal does.
            if row[_COLUMN["trending"]] > 0.5:
                found.append(r.TRENDING)
            if row[_COLUMN["popularity"]] > 0.5 or not found:
                found.append(r.POPULAR)
        result.append(tuple(dict.fromkeys(found))[:_MAX_REASONS])
    return result


def _strongest_history_items(
    chosen: npt.NDArray[np.int64], state: _UserState, model: RecommenderModel, view: CatalogView
) -> dict[int, int | None]:
    """For each chosen model item, the liked movie that contributes most to it (one matrix
    product for all of them)."""
    items = chosen[chosen < view.n_model]
    if items.size == 0:
        return {}
    history, weights = state.history, state.weights[:, None]
    if model.ease is not None:
        contributions = model.ease[np.ix_(history, items)] * weights
    elif model.item_factors is not None:
        contributions = (model.item_factors[history] @ model.item_factors[items].T) * weights
    else:
        contributions = np.array(
            [
                [
                    float(model.neighbor_weights[h][model.neighbors[h] == item].sum())
                    for item in items
                ]
                for h in history
            ]
        ).reshape(history.size, items.size)
    best = np.argmax(contributions, axis=0)
    strongest = contributions[best, np.arange(items.size)]
    return {
        int(item): int(history[b]) if value > 0 else None
        for item, b, value in zip(items.tolist(), best.tolist(), strongest.tolist(), strict=True)
    }


def _neighbor_weight(model: RecommenderModel, source: int, item: int) -> float:
    return float(model.neighbor_weights[source][model.neighbors[source] == item].sum())


def _has_keyword(view: CatalogView, word: str, item: int) -> bool:
    items = view.keyword_items.get(word)
    return items is not None and bool(np.any(items == item))


def _favourite_genre_of(item: int, view: CatalogView, affinity: dict[str, float]) -> str | None:
    genres = [view.genres[g] for g in np.flatnonzero(view.genre_matrix[item])]
    liked = [(affinity.get(g, 0.0), g) for g in genres if affinity.get(g, 0.0) > 0]
    return max(liked)[1] if liked else None
