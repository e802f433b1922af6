"""The coordinate ascent that refines the ranker's weights after the coarse grid."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from interaction_recommender.training.fit import FitConfig, coordinate_ascent

CONFIG = FitConfig()


def _bowl(best: dict[str, float]) -> Callable[[dict[str, float]], float]:
    def objective(weights: dict[str, float]) -> float:
        return -sum((weights.get(n, 0.0) - v) ** 2 for n, v in best.items())

    return objective


def test_the_ascent_reaches_an_optimum_between_the_grid_points() -> None:
    objective = _bowl({"trending": 0.35, "popularity": -0.6})
    start = {"ease": 1.0, "popularity": 0.0}

    weights, tried = coordinate_ascent(
        objective, start, objective(start), ["popularity", "trending"], CONFIG
    )

    assert weights["ease"] == 1.0  # not among the names: never moved
    assert weights["trending"] == pytest.approx(0.35, abs=0.025)
    assert weights["popularity"] == pytest.approx(-0.6, abs=0.025)
    assert tried % (2 * len(CONFIG.ranker_steps)) == 0
    assert tried <= CONFIG.ranker_rounds * 2 * len(CONFIG.ranker_steps)


def test_a_gain_below_the_floor_moves_nothing() -> None:
    def objective(weights: dict[str, float]) -> float:
        return 1e-5 * weights.get("trending", 0.0)  # at most 5e-6 per step: below the floor

    start = {"ease": 1.0}
    weights, tried = coordinate_ascent(objective, start, 0.0, ["trending"], CONFIG)

    assert weights == start
    assert tried == len(CONFIG.ranker_steps)  # one round, then stop: nothing moved
