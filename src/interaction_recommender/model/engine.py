"""The recommendation engine: one pure entry point, ``recommend``, that the API calls unchanged.

    retrieval: a few hundred candidates from every source (the collaborative top through EASE or
      the model's ALS index, the history's neighbours, popular and trending, new releases, the
      user's genres, search matches for `search`; the anchor's neighbours and genre for
      `similar`/`detail`)
      -> filters (started, watched to completion, rated, disliked, unavailable, the anchor)
      -> one FEATURE_NAMES row per candidate, standardised with the model's fixed statistics
      -> scoring: the ranker over those rows
      -> `home`: calibrated re-ranking of the best candidates to the user's genre distribution
         (model/calibration.py, deterministic)
      -> top k, each with reasons from model/reasons.py

Everything heavy was prepared at training time (arrays.py) or when the catalog changed
(catalog_view.py: the short lists retrieval draws from); a call touches the candidates, not the
catalog (``EngineSettings(retrieval=False)`` scores every allowed item instead: the reference
the retrieval's recall is measured against). Events act without retraining: the history comes
from the user's streaming features.

Timing hooks: ``recommend`` and ``candidate_rows`` take an optional ``laps`` (a ``StageLaps``)
that is told when each of ``STAGES`` ends; the default does nothing. bench/engine.py uses it for
its per-stage split, so the benchmark times this code and no copy of it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from uuid import UUID

import numpy as np
import numpy.typing as npt

from interaction_recommender.features.profile import (
    COMPLETED,
    SEEN,
    UserProfile,
    profile_of,
)
from interaction_recommender.features.state import UserFeatures
from interaction_recommender.model import reasons as r
from interaction_recommender.model.arrays import FEATURE_NAMES, RecommenderModel
from interaction_recommender.model.calibration import calibrated_order, split_genres
from interaction_recommender.model.catalog_view import CatalogView, keywords_of
from interaction_recommender.model.context import Context
from interaction_recommender.model.labels import profile_labels
from interaction_recommender.settings import Settings

__all__ = [
    "STAGES",
    "Candidates",
    "EngineSettings",
    "Recommendation",
    "StageLaps",
    "calibrated_list",
    "calibration_strength",
    "candidate_rows",
    "feature_statistics",
    "recommend",
    "score_candidates",
    "shortlist_of",
    "standardise",
]

Floats = npt.NDArray[np.float32]
_COLUMN = {name: i for i, name in enumerate(FEATURE_NAMES)}
_FLAGS = frozenset({"new_release", "search_match", "genre_affinity"})
_CONTINUOUS = np.array([i for name, i in _COLUMN.items() if name not in _FLAGS])
_MAX_REASONS = 3

STAGES = (
    "user state",  # _UserState.of: labels, exclusions (Python over the history)
    "collaborative",  # EASE scores over the model's items, the ALS fold-in solve
    "kNN",  # neighbour contributions of the history, np.add.at
    "retrieve",  # genre vector, search matches, the candidate sources, union, filters
    "feature rows",  # the FEATURE_NAMES columns of the candidates
    "standardise",  # the fixed statistics
    "score",  # the ranker (+ the search boost)
    "top k",  # argpartition, lexsort: the shortlist in ranker order
    "calibrate",  # `home`: the calibrated choice of k from the shortlist
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
    """On the wire: the running minimum of the ranker's probability down the list (monotone
    with list order, in the ranker's units, also after calibrated re-ranking)."""
    reasons: tuple[str, ...]
    ranker_score: float
    """The ranker's own probability for the movie (the impression log keeps it)."""


@dataclass(frozen=True)
class EngineSettings:
    diversity: bool = True
    """Deprecated (DIVERSITY=false): False is calibration strength 0."""
    calibration_lambda: float | None = None
    """λ of the calibrated `home` re-ranking in [0, 1]; None: the one the model was trained
    with (``RecommenderModel.calibration_lambda``)."""
    new_release_years: int = 1
    """Released this year or up to this many years before: a new release."""
    search_boost: float = 3.0
    """`search` context: added to a matching movie's logit."""
    recent_searches: int = 5
    retrieval: bool = True
    """Score the retrieved candidates (False: every allowed item, the reference)."""
    collaborative_candidates: int = 200
    """From the EASE scores and from the ALS index, each."""
    neighbour_candidates: int = 100
    """The history's (or the anchor's) neighbours with the largest summed similarity."""
    popular_candidates: int = 100
    trending_candidates: int = 50
    new_release_candidates: int = 50
    top_genres: int = 3
    genre_candidates: int = 50
    """The most popular of each of the user's ``top_genres`` favourite genres."""
    fresh_candidates: int = 20
    """The newest movies the model does not know yet, of each favourite genre (and of the
    anchor's genre): they have no collaborative signal or popularity to be found by."""
    search_candidates: int = 100
    """The most popular matches of each recent search keyword (`search`)."""
    anchor_genre_candidates: int = 100
    """The most popular of the anchor's primary genre (`similar`/`detail`)."""

    @classmethod
    def from_settings(cls, settings: Settings) -> EngineSettings:
        return cls(diversity=settings.diversity, calibration_lambda=settings.calibration_lambda)

    def calibration_for(self, model: RecommenderModel) -> float:
        """λ of `home` lists with this model: the setting's, else the model's; 0 with
        DIVERSITY=false."""
        if not self.diversity:
            return 0.0
        chosen = (
            model.calibration_lambda if self.calibration_lambda is None else self.calibration_lambda
        )
        return min(max(float(chosen), 0.0), 1.0)


def recommend(
    user: UserProfile | UserFeatures | None,
    context: Context,
    k: int,
    model: RecommenderModel,
    view: CatalogView,
    *,
    now: datetime,
    settings: EngineSettings = EngineSettings(),
    laps: Laps = _NO_LAPS,
) -> list[Recommendation]:
    profile = as_profile(user)
    candidates = candidate_rows(
        profile, context, model, view, now=now, settings=settings, laps=laps
    )
    if candidates.pool.size == 0:
        return []
    scores = score_candidates(candidates, context, model, settings)
    laps.lap("score")
    shortlist = shortlist_of(candidates.pool, scores, k)
    laps.lap("top k")
    strength = calibration_strength(context, candidates, model, settings)
    positions = shortlist[calibrated_list(shortlist, scores, k, candidates, view, strength)]
    laps.lap("calibrate")
    picked = candidates.pool[positions]
    rows = candidates.rows[positions]
    reasons = _reasons_for(picked, rows, candidates, model, view, profile, now)
    probabilities = [_probability(s) for s in scores[positions].tolist()]
    shown = np.minimum.accumulate(np.asarray(probabilities, dtype=np.float64)).tolist()
    answer = [
        Recommendation(movie_id=view.ids[item], score=wire, reasons=why, ranker_score=raw)
        for item, wire, raw, why in zip(picked.tolist(), shown, probabilities, reasons, strict=True)
    ]
    laps.lap("reasons")
    return answer


def score_candidates(
    candidates: Candidates, context: Context, model: RecommenderModel, settings: EngineSettings
) -> Floats:
    """One logit-like score per candidate, before any re-ranking: the ranker's, or, with nothing
    to personalise from (no history, or a popularity-only fallback model), the cold-start policy
    of popular and trending movies (the ranker was tuned on users with a history; it may weigh
    popularity at 0). `search` adds the search boost to the matching movies."""
    rows = candidates.rows
    personal = candidates.state.history.size or candidates.anchor is not None
    if personal and model.personalised:
        scores = _score(model, rows)
    else:
        scores = rows[:, _COLUMN["popularity"]] + rows[:, _COLUMN["trending"]]
        scores = scores + rows[:, _COLUMN["genre_affinity"]]
    if context.kind == "search":
        scores = scores + np.float32(settings.search_boost) * rows[:, _COLUMN["search_match"]]
    return scores


@dataclass
class Candidates:
    """The items that may be recommended, with their ranker input rows (FEATURE_NAMES)."""

    pool: npt.NDArray[np.int64]
    """Item indices of the view, ascending."""
    rows: Floats
    state: _UserState
    anchor: int | None
    genre_target: npt.NDArray[np.float64] | None = None
    """`home`: the user's genre distribution over the view's genres (calibration's p, see
    ``_genre_target``); None elsewhere and without a liked movie that has a genre."""


def as_profile(user: UserProfile | UserFeatures | None) -> UserProfile | None:
    """The engine reads the serving profile (features/profile.py); full features (training,
    the embedded mode) are converted by the profile's one definition."""
    return profile_of(user) if isinstance(user, UserFeatures) else user


def candidate_rows(
    user: UserProfile | UserFeatures | None,
    context: Context,
    model: RecommenderModel,
    view: CatalogView,
    *,
    now: datetime,
    settings: EngineSettings = EngineSettings(),
    laps: Laps = _NO_LAPS,
) -> Candidates:
    """Retrieval and filters, then one standardised feature row per candidate. Training tunes
    the ranker on exactly these rows."""
    profile = as_profile(user)
    state = _UserState.of(profile, model, view)
    laps.lap("user state")
    anchor = view.index.get(context.movie_id) if context.movie_id else None
    signals = _Signals.of(state, profile, anchor, model, view, now, settings, laps)
    if settings.retrieval:
        pool = _retrieve(signals, state, context, anchor, model, view, settings)
    else:
        pool = _every_allowed(state, anchor, model, view)
    laps.lap("retrieve")
    rows = _raw_rows(pool, signals, model, view)
    laps.lap("feature rows")
    target = _genre_target(state, view) if context.kind == "home" else None
    candidates = Candidates(pool, standardise(rows, model), state, anchor, target)
    laps.lap("standardise")
    return candidates


@dataclass
class _UserState:
    history: npt.NDArray[np.int64]
    """Model item indices the user liked, strongest last."""
    weights: Floats
    excluded: npt.NDArray[np.bool_]
    """Started (any progress), watched to completion, rated or disliked: never recommended."""
    taste: npt.NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, np.int64))
    """View positions of every movie with a positive label (the model's or not)."""
    taste_weights: npt.NDArray[np.float64] = field(default_factory=lambda: np.zeros(0, np.float64))

    @classmethod
    def of(
        cls, profile: UserProfile | None, model: RecommenderModel, view: CatalogView
    ) -> _UserState:
        excluded = np.zeros(view.n_items, dtype=np.bool_)
        if profile is None or profile.movies.size == 0:
            return cls(np.zeros(0, np.int64), np.zeros(0, np.float32), excluded)
        labels = profile_labels(profile, model.labels)
        positions = view.positions(profile.movies)
        known = positions >= 0
        done = ((profile.flags & (SEEN | COMPLETED)) > 0) | ~np.isnan(profile.rating)
        # Started, at any progress: resuming it is a "continue watching" row's job, and a
        # recommendation slot spent on it was measured to cost nDCG (bench/worlds.py).
        done |= ~np.isnan(profile.progress)
        done |= labels < 0  # NaN compares False: unlabelled movies are not excluded by it
        excluded[positions[done & known]] = True
        positive = (labels > 0) & known
        liked = positive & (positions < view.n_model)
        items, values = positions[liked], labels[liked]
        order = np.lexsort((items, values))  # weakest first, ties by model index
        return cls(
            items[order],
            values[order].astype(np.float32),
            excluded,
            positions[positive],
            labels[positive],
        )


@dataclass
class _Signals:
    """What one request knows about the user, computed once and read by retrieval and by the
    feature rows: the collaborative scores (EASE over the model's items, the ALS vector, the
    neighbour sums), the genre-affinity vector, the recent search matches."""

    history: npt.NDArray[np.int64]
    """The liked items, or the anchor for `similar`/`detail` (it plays the history's part)."""
    ease: Floats | None
    user_vector: Floats | None
    touched: npt.NDArray[np.int64]
    """The items the history's neighbour lists reach, ascending (sparse: a catalog-sized array
    per request cost a tenth of a call at 100,000 movies)."""
    knn: Floats
    """Their summed neighbour similarity, aligned with ``touched``."""
    genre_vector: Floats | None
    """Affinity per genre of the view, scaled to a maximum of 1; None without one."""
    search_words: list[str]
    """The recent search keywords that name something in the catalog, most recent first."""
    new_release_after: int
    """A movie released in this year or later is a new release."""

    @classmethod
    def of(
        cls,
        state: _UserState,
        profile: UserProfile | None,
        anchor: int | None,
        model: RecommenderModel,
        view: CatalogView,
        now: datetime,
        settings: EngineSettings,
        laps: Laps,
    ) -> _Signals:
        nm = view.n_model
        if anchor is not None and anchor < nm:
            history, weights = np.array([anchor], dtype=np.int64), np.ones(1, dtype=np.float32)
        else:
            history, weights = state.history, state.weights
        ease = user_vector = None
        touched, knn = np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        if history.size:
            if model.ease is not None:
                ease = weights @ model.ease[history]
            if model.item_factors is not None:
                user_vector = _fold_in(model, history, weights)
            laps.lap("collaborative")
            neighbors = model.neighbors[history]
            valid = neighbors >= 0
            contributions = (model.neighbor_weights[history] * weights[:, None])[valid]
            touched, slots = np.unique(neighbors[valid], return_inverse=True)
            knn = np.bincount(slots, contributions, minlength=touched.size).astype(np.float32)
            touched = touched.astype(np.int64)
            laps.lap("kNN")
        genre_vector = None
        if profile is not None and view.genres:
            affinity = profile.genre_affinity_at(now)
            vector = np.array([max(affinity.get(g, 0.0), 0.0) for g in view.genres], np.float32)
            if vector.max(initial=0.0) > 0:
                genre_vector = vector / vector.max()
        words = [w for w in _search_keywords(profile, settings) if w in view.keyword_items]
        return cls(
            history,
            ease,
            user_vector,
            touched,
            knn,
            genre_vector,
            words,
            now.year - settings.new_release_years,
        )


def _retrieve(
    signals: _Signals,
    state: _UserState,
    context: Context,
    anchor: int | None,
    model: RecommenderModel,
    view: CatalogView,
    settings: EngineSettings,
) -> npt.NDArray[np.int64]:
    """A few hundred candidates from every source the ranker can reward: the collaborative top
    (EASE scores, ALS through the model's index), the history's (or the anchor's) neighbours,
    the most popular and trending, new releases, the user's favourite genres, the matches of
    recent searches (`search`), the anchor's genre (`similar`/`detail`). Then the filters:
    available, not excluded, not the anchor, related to the anchor."""
    limit = settings.collaborative_candidates
    parts = [view.popular[: settings.popular_candidates]]
    parts.append(view.trending_top[: settings.trending_candidates])
    parts.append(_new_releases(view, signals.new_release_after, settings.new_release_candidates))
    if signals.ease is not None:
        parts.append(_top_indices(signals.ease, limit))
    if signals.user_vector is not None:
        parts.append(model.collaborative_top(signals.user_vector, limit))
    if signals.touched.size:
        parts.append(signals.touched[_top_indices(signals.knn, settings.neighbour_candidates)])
    if signals.genre_vector is not None:
        favourites = np.argsort(-signals.genre_vector, kind="stable")[: settings.top_genres]
        for g in favourites[signals.genre_vector[favourites] > 0]:
            parts.append(view.genre_top[g][: settings.genre_candidates])
            parts.append(view.fresh_by_genre[g][: settings.fresh_candidates])
    if context.kind == "search":
        parts += [view.keyword_items[w][: settings.search_candidates] for w in signals.search_words]
    if anchor is not None:
        genre = view.primary_genre[anchor]
        if genre >= 0:
            parts.append(view.genre_top[genre][: settings.anchor_genre_candidates])
            parts.append(view.fresh_by_genre[genre][: settings.fresh_candidates])
    pool = np.unique(np.concatenate(parts).astype(np.int64))
    keep = view.available[pool] & ~state.excluded[pool]
    if anchor is not None:
        keep &= (pool != anchor) & _related(anchor, pool, model, view)
    return pool[keep]


def _every_allowed(
    state: _UserState, anchor: int | None, model: RecommenderModel, view: CatalogView
) -> npt.NDArray[np.int64]:
    """The reference without retrieval: every available, not excluded (related) item."""
    allowed = view.available & ~state.excluded
    if anchor is not None:
        allowed[anchor] = False
        allowed &= _related_to(anchor, model, view)
    return np.flatnonzero(allowed)


def _raw_rows(
    pool: npt.NDArray[np.int64],
    signals: _Signals,
    model: RecommenderModel,
    view: CatalogView,
) -> Floats:
    """One FEATURE_NAMES row per candidate, before standardisation (0 for what the model does not
    know about an item)."""
    rows = np.zeros((pool.size, len(FEATURE_NAMES)), dtype=np.float32)
    known = pool < view.n_model
    items = pool[known]
    if signals.ease is not None:
        rows[known, _COLUMN["ease"]] = signals.ease[items]
    if signals.user_vector is not None and model.item_factors is not None:
        rows[known, _COLUMN["als"]] = model.item_factors[items] @ signals.user_vector
    if signals.touched.size:
        at = np.minimum(np.searchsorted(signals.touched, items), signals.touched.size - 1)
        rows[known, _COLUMN["item_knn"]] = np.where(
            signals.touched[at] == items, signals.knn[at], 0.0
        )
    rows[:, _COLUMN["popularity"]] = view.popularity[pool]
    rows[:, _COLUMN["trending"]] = view.trending[pool]
    if signals.genre_vector is not None:
        rows[:, _COLUMN["genre_affinity"]] = (
            view.genre_matrix[pool] @ signals.genre_vector
        ) / view.genre_counts[pool]
    rows[:, _COLUMN["new_release"]] = view.release_year[pool] >= signals.new_release_after
    if signals.search_words:
        rows[:, _COLUMN["search_match"]] = view.matches(signals.search_words, pool)
    return rows


def standardise(rows: Floats, model: RecommenderModel) -> Floats:
    """The continuous columns as (x - mean) / std with the model's fixed statistics
    (``RecommenderModel.feature_stats``, FEATURE_SEMANTICS 2): a value means the same whatever
    the candidates beside it."""
    stats = model.feature_stats
    if stats is None:
        raise ValueError(f"model {model.version} has no feature statistics (semantics 1)")
    rows[:, _CONTINUOUS] = (rows[:, _CONTINUOUS] - stats[0, _CONTINUOUS]) / stats[1, _CONTINUOUS]
    return rows


def feature_statistics(
    users: Sequence[UserProfile | UserFeatures],
    model: RecommenderModel,
    view: CatalogView,
    *,
    now: datetime,
) -> Floats:
    """(2, features): mean and standard deviation of each continuous column over the rows of
    every allowed item of every user given (in training: a sample of the training users); the
    flag columns get (0, 1). Computed once per model and fixed: see ``standardise``."""
    total = np.zeros(len(FEATURE_NAMES), dtype=np.float64)
    squares = np.zeros(len(FEATURE_NAMES), dtype=np.float64)
    count = 0
    for user in users:
        profile = as_profile(user)
        state = _UserState.of(profile, model, view)
        signals = _Signals.of(state, profile, None, model, view, now, EngineSettings(), _NO_LAPS)
        rows = _raw_rows(_every_allowed(state, None, model, view), signals, model, view)
        total += rows.sum(axis=0, dtype=np.float64)
        squares += np.square(rows, dtype=np.float64).sum(axis=0)
        count += rows.shape[0]
    stats = np.zeros((2, len(FEATURE_NAMES)), dtype=np.float32)
    stats[1] = 1.0
    if count:
        mean = total / count
        std = np.sqrt(np.maximum(squares / count - mean**2, 0.0))
        stats[0, _CONTINUOUS] = mean[_CONTINUOUS]
        stats[1, _CONTINUOUS] = np.where(std[_CONTINUOUS] > 1e-6, std[_CONTINUOUS], 1.0)
    return stats


def _top_indices(scores: Floats, n: int) -> npt.NDArray[np.int64]:
    """Positions of the ``n`` largest scores (unordered)."""
    if scores.size <= n:
        return np.arange(scores.size, dtype=np.int64)
    return np.argpartition(-scores, n - 1)[:n].astype(np.int64)


def _new_releases(view: CatalogView, after: int, n: int) -> npt.NDArray[np.int64]:
    lists = [items for year, items in view.year_top.items() if year >= after]
    if not lists:
        return np.zeros(0, dtype=np.int64)
    merged = np.concatenate(lists)
    return merged[np.argsort(-view.popularity[merged], kind="stable")[:n]]


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
    return _related(anchor, np.arange(view.n_items, dtype=np.int64), model, view)


def _related(
    anchor: int, items: npt.NDArray[np.int64], model: RecommenderModel, view: CatalogView
) -> npt.NDArray[np.bool_]:
    """Which of ``items`` are related to the anchor (see ``_related_to``)."""
    related = np.zeros(items.size, dtype=np.bool_)
    if anchor < view.n_model:
        neighbours = model.neighbors[anchor]
        related |= np.isin(items, neighbours[neighbours >= 0])
    genre = view.primary_genre[anchor]
    if genre >= 0:
        related |= view.genre_matrix[items, genre] > 0
    return related


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


def shortlist_of(pool: npt.NDArray[np.int64], scores: Floats, k: int) -> npt.NDArray[np.int64]:
    """Positions in ``pool`` of the best ``max(4k, k + 50)`` candidates, best first; ties by
    catalog order (deterministic). The list is chosen from these."""
    take = min(pool.size, max(k * 4, k + 50))
    best = np.argpartition(-scores, take - 1)[:take] if take < pool.size else np.arange(pool.size)
    ordered: npt.NDArray[np.int64] = best[np.lexsort((pool[best], -scores[best]))]
    return ordered


def calibration_strength(
    context: Context, candidates: Candidates, model: RecommenderModel, settings: EngineSettings
) -> float:
    """λ for this request: the setting's, else the model's; 0 outside `home` (`similar` and
    `detail` follow the anchor, `search` the query), for a user with no liked history or no
    genre affinity, and with DIVERSITY=false."""
    if (
        context.kind != "home"
        or candidates.state.history.size == 0
        or candidates.genre_target is None
    ):
        return 0.0
    return settings.calibration_for(model)


def calibrated_list(
    shortlist: npt.NDArray[np.int64],
    scores: Floats,
    k: int,
    candidates: Candidates,
    view: CatalogView,
    strength: float,
) -> npt.NDArray[np.int64]:
    """Positions in ``shortlist`` of the list, in order (the first k without calibration)."""
    if strength <= 0.0 or candidates.genre_target is None:
        return np.arange(min(k, shortlist.size), dtype=np.int64)
    items = candidates.pool[shortlist]
    genres = split_genres(view.genre_matrix[items], view.genre_distribution)
    return calibrated_order(
        scores[shortlist], genres, candidates.genre_target, view.genre_distribution, k, strength
    )


def _genre_target(state: _UserState, view: CatalogView) -> npt.NDArray[np.float64] | None:
    """Calibration's p: the genre distribution of what the user liked, each movie weighted by
    its label and split evenly over its genres; movies without genres left out. None when no
    liked movie has a genre."""
    if state.taste.size == 0 or not view.genres:
        return None
    rows = view.genre_matrix[state.taste]
    counts = rows.sum(axis=1, dtype=np.float64)
    mass = (state.taste_weights / np.maximum(counts, 1.0)) @ rows
    total = float(mass.sum())
    return mass / total if total > 0 else None


def _search_keywords(profile: UserProfile | None, settings: EngineSettings) -> list[str]:
    if profile is None:
        return []
    recent = profile.recent_queries[-settings.recent_searches :]
    return list(dict.fromkeys(w for query in reversed(recent) for w in keywords_of(query)))


def _reasons_for(
    chosen: npt.NDArray[np.int64],
    rows: Floats,
    candidates: Candidates,
    model: RecommenderModel,
    view: CatalogView,
    profile: UserProfile | None,
    now: datetime,
) -> list[tuple[str, ...]]:
    """Why each chosen item: the features that pushed it up, named from the fixed vocabulary.
    What the items share (search keywords, genre affinity, the history's contributions) is
    computed for all of them at once."""
    state, anchor = candidates.state, candidates.anchor
    personal = anchor is None and state.history.size > 0
    sources = _strongest_history_items(chosen, state, model, view) if personal else {}
    keywords = _search_keywords(profile, EngineSettings())
    keyword_hits = [(w, view.matches([w], chosen)) for w in keywords]
    genres = _favourite_genres(chosen, view, profile, now)
    result = []
    for at, (item, row) in enumerate(zip(chosen.tolist(), rows.tolist(), strict=True)):
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
            word = next((w for w, hits in keyword_hits if hits[at]), None)
            if word is not None:
                found.append(r.matches_search(word))
        if row[_COLUMN["genre_affinity"]] > 0 and genres[at] is not None:
            found.append(r.matches_genre(genres[at]))  # type: ignore[arg-type]
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


def _favourite_genres(
    items: npt.NDArray[np.int64], view: CatalogView, profile: UserProfile | None, now: datetime
) -> list[str | None]:
    """Per item, the genre of it the user likes most (None: none they like); ties go to the
    name that sorts last."""
    affinity = profile.genre_affinity_at(now) if profile is not None else {}
    if not affinity or not view.genres:
        return [None] * items.size
    vector = np.array([max(affinity.get(g, 0.0), 0.0) for g in view.genres], dtype=np.float64)
    liked = view.genre_matrix[items] * vector[None, :]  # genres sorted by name: reverse, so
    last_best = liked.shape[1] - 1 - np.argmax(liked[:, ::-1], axis=1)  # ties pick the last
    best_value = liked[np.arange(items.size), last_best]
    return [
        view.genres[g] if value > 0 else None
        for g, value in zip(last_best.tolist(), best_value.tolist(), strict=True)
    ]


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
