"""Calibrated re-ranking (model/calibration.py) against its stated objective."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from interaction_recommender.model.calibration import (
    SMOOTHING,
    calibrated_order,
    miscalibration,
    split_genres,
)
from interaction_recommender.model.engine import EngineSettings
from interaction_recommender.settings import Settings
from interaction_recommender.training.fit import choose_lambda


def _objective(
    z: np.ndarray, rows: np.ndarray, chosen: list[int], p: np.ndarray, c: np.ndarray, lam: float
) -> float:
    """(1 - λ) Σ s - λ KL(p ‖ q̃), written out as the module docstring states it."""
    q = rows[chosen].mean(axis=0)
    smoothed = (1 - SMOOTHING) * q + SMOOTHING * c
    used = p > 0
    kl = float(np.sum(p[used] * np.log(p[used] / smoothed[used])))
    return (1 - lam) * float(z[chosen].sum()) - lam * kl


def _instance(seed: int, m: int = 30, genres: int = 6) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    matrix = (rng.random((m, genres)) < 0.3).astype(np.float32)
    matrix[rng.random(m) < 0.1] = 0.0  # some movies without genres
    catalog = rng.random(genres) + 0.1
    catalog /= catalog.sum()
    logits = np.sort(rng.normal(size=m).astype(np.float32))[::-1]  # best first
    target = rng.random(genres) * (rng.random(genres) < 0.7)
    target[0] += 0.1
    target /= target.sum()
    return logits, split_genres(matrix, catalog), target, catalog


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("lam", [0.2, 0.6, 0.95])
def test_each_step_adds_the_candidate_with_the_largest_gain(seed: int, lam: float) -> None:
    logits, rows, target, catalog = _instance(seed)
    k = 8
    order = calibrated_order(logits, rows, target, catalog, k, lam).tolist()

    z = (logits - logits.mean()) / logits.std()
    chosen: list[int] = []
    for step in range(k):
        gains = [
            _objective(z, rows, [*chosen, i], target, catalog, lam) if i not in chosen else -np.inf
            for i in range(logits.size)
        ]
        best = int(np.argmax(gains))
        assert order[step] == best or np.isclose(gains[order[step]], gains[best]), step
        chosen.append(order[step])
    assert len(set(order)) == k


def test_strength_zero_keeps_the_ranker_order() -> None:
    logits, rows, target, catalog = _instance(1)
    assert calibrated_order(logits, rows, target, catalog, 10, 0.0).tolist() == list(range(10))


def test_full_strength_matches_the_users_genre_shares() -> None:
    # 70% genre A, 30% genre B; the ranker prefers every A movie to every B movie.
    matrix = np.zeros((40, 2), dtype=np.float32)
    matrix[:20, 0] = 1.0
    matrix[20:, 1] = 1.0
    logits = np.linspace(3.0, -3.0, 40).astype(np.float32)
    catalog = np.array([0.5, 0.5])
    target = np.array([0.7, 0.3])
    rows = split_genres(matrix, catalog)

    plain = calibrated_order(logits, rows, target, catalog, 10, 0.0)
    calibrated = calibrated_order(logits, rows, target, catalog, 10, 0.99)

    assert (plain >= 20).sum() == 0
    assert (calibrated >= 20).sum() == 3
    # within each genre the ranker's order is kept
    assert calibrated[calibrated < 20].tolist() == list(range(7))
    assert miscalibration(target, rows[calibrated], catalog) < miscalibration(
        target, rows[plain], catalog
    )


def test_a_genre_no_candidate_has_still_gives_k_distinct_movies() -> None:
    matrix = np.zeros((12, 3), dtype=np.float32)
    matrix[:, 0] = 1.0
    catalog = np.array([0.6, 0.4, 0.0])  # the third genre: no movie at all
    target = np.array([0.2, 0.3, 0.5])
    logits = np.linspace(1.0, 0.0, 12).astype(np.float32)

    order = calibrated_order(logits, split_genres(matrix, catalog), target, catalog, 10, 0.9)

    assert sorted(order.tolist()) == list(range(10))  # nothing else to choose from: the best 10


def test_a_movie_without_genres_counts_as_the_catalog() -> None:
    catalog = np.array([0.25, 0.75])
    rows = split_genres(np.array([[0, 0], [1, 1], [1, 0]], dtype=np.float32), catalog)
    assert rows.tolist() == [[0.25, 0.75], [0.5, 0.5], [1.0, 0.0]]


def test_the_strength_served_follows_the_settings_then_the_model() -> None:
    model = SimpleNamespace(calibration_lambda=0.7)
    assert EngineSettings().calibration_for(model) == 0.7  # type: ignore[arg-type]
    assert EngineSettings(calibration_lambda=0.2).calibration_for(model) == 0.2  # type: ignore[arg-type]
    assert EngineSettings(diversity=False).calibration_for(model) == 0.0  # type: ignore[arg-type]
    from_env = EngineSettings.from_settings(Settings(calibration_lambda=0.3, database_url=None))
    assert from_env.calibration_for(model) == 0.3  # type: ignore[arg-type]


def test_lambda_is_the_largest_within_the_tolerance_of_no_calibration() -> None:
    ndcg = {0.0: 0.300, 0.2: 0.304, 0.5: 0.296, 0.8: 0.294, 0.9: 0.310}
    assert choose_lambda(ndcg, 0.005) == 0.9  # not monotone: the largest that qualifies
    assert choose_lambda({0.0: 0.3, 0.5: 0.29}, 0.005) == 0.0
    assert choose_lambda({}, 0.005) == 0.0  # not tuned: the ranker's order
