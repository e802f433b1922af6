"""`recommender train`'s pipeline on a synthetic world: tuned, evaluated, better than popularity."""

from __future__ import annotations

import pytest

from interaction_recommender.demo.events import world_catalog, world_events
from interaction_recommender.demo.world import generate_world
from interaction_recommender.training.fit import FitConfig
from interaction_recommender.training.pipeline import train_model

SMALL = FitConfig(als_grid=((16, 20.0, 2.0), (32, 35.0, 4.0)), als_iterations=5)


def test_training_on_a_synthetic_world_beats_popularity_on_the_later_events() -> None:
    world = generate_world(11, movies=150, users=600, days=60)
    events, catalog = world_events(world), world_catalog(world)

    stages: list[str] = []
    result = train_model(events, catalog, config=SMALL, version="test", progress=stages.append)

    metrics = result.metrics
    assert len(stages) == 3
    assert metrics["users"] > 50
    assert 0.0 <= metrics["ndcg"] <= 1.0
    # The planted tastes were learnt: better than the most popular movies on what came later.
    assert metrics["ndcg"] > metrics["popularityNdcg"] + 0.01
    # EASE alone (its l2 tuned on the same inner split) on the same users, paired
    assert 0.0 <= metrics["easeNdcg"] <= 1.0
    delta = metrics["ndcgMinusEase"]
    assert delta["low"] <= delta["mean"] <= delta["high"]
    assert delta["mean"] == pytest.approx(metrics["ndcg"] - metrics["easeNdcg"], abs=2e-4)
    model = result.model
    assert model.version == "test"
    assert model.info["events"] == len(events)
    grid = 4 + 2 + 4 * 2 * 4 * 2 + len(SMALL.calibration_grid)  # l2, ALS, ranker grid, λ
    # then the ascent: 1 to 3 rounds over the 7 weights besides EASE's
    ascent = model.info["params"]["configsTried"] - grid
    assert ascent in {rounds * 7 * len(SMALL.ranker_steps) for rounds in (1, 2, 3)}
    # λ: the largest whose inner-holdout nDCG is within the tolerance of λ = 0's
    by_lambda = {float(k): v for k, v in model.info["calibration"]["ndcgByLambda"].items()}
    assert set(by_lambda) == set(SMALL.calibration_grid)
    chosen = model.calibration_lambda
    assert by_lambda[chosen] >= by_lambda[0.0] - SMALL.calibration_tolerance - 1e-4  # rounded
    floor = by_lambda[0.0] - SMALL.calibration_tolerance
    assert all(by_lambda[s] <= floor + 1e-4 for s in by_lambda if s > chosen)
    assert model.ease is not None  # 80 movies: EASE
    assert model.item_factors is not None
    assert set(model.item_ids) >= {m.movie_id for m in catalog}


def test_above_the_dense_limit_the_model_has_no_ease_part() -> None:
    world = generate_world(12, movies=60, users=200, days=30)
    config = FitConfig(
        ease_max_items=10,
        als_grid=((16, 20.0, 2.0),),
        als_iterations=3,
        ranker_grid={"popularity": (0.0,)},
    )

    result = train_model(world_events(world), world_catalog(world), config=config)

    assert result.model.ease is None
    assert result.model.item_factors is not None
    assert result.model.neighbors.shape == (len(result.model.item_ids), 50)
