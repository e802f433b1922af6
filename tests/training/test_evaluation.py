"""Offline benchmark building blocks on small synthetic data (never MovieLens in tests)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from interaction_recommender.cli import app
from interaction_recommender.training.baselines import (
    ALS,
    EASE,
    SAR,
    ItemKNN,
    MostPop,
    ScoringRecommender,
    top_k,
)
from interaction_recommender.training.benchmark import (
    ModelSpec,
    ServiceFit,
    SplitEvaluator,
    evaluate_split,
    item_genre_rows,
)
from interaction_recommender.training.fit import FitConfig
from interaction_recommender.training.metrics import (
    bootstrap_interval,
    check_recommendations,
    list_metrics,
    paired_difference,
    ranking_metrics,
    relevance_from_lists,
)
from interaction_recommender.training.movielens import (
    DataIntegrityError,
    IntArray,
    Interactions,
    ItemMetadata,
    Split,
    build_dataset,
    global_time_split,
    parse_inter,
    stratified_split,
    time_split,
)
from interaction_recommender.training.movielens_service import service_model


def make_interactions(
    users: list[int],
    items: list[int],
    timestamps: list[int] | None = None,
    ratings: list[float] | None = None,
    n_users: int | None = None,
    n_items: int | None = None,
) -> Interactions:
    n = len(users)
    return Interactions(
        users=np.asarray(users, dtype=np.int64),
        items=np.asarray(items, dtype=np.int64),
        ratings=np.asarray(ratings if ratings is not None else [1.0] * n, dtype=np.float64),
        timestamps=np.asarray(timestamps if timestamps is not None else range(n), dtype=np.int64),
        n_users=n_users if n_users is not None else max(users) + 1,
        n_items=n_items if n_items is not None else max(items) + 1,
    )


def two_clusters(seed: int = 0) -> tuple[Interactions, Interactions]:
    """Users 0-19 use only items 0-9, users 20-39 only items 10-19. Train: 6 random items of
    the user's cluster; held out: the other 4."""
    rng = np.random.default_rng(seed)
    train_u, train_i, test_u, test_i = [], [], [], []
    for user in range(40):
        cluster_items = np.arange(10) + (0 if user < 20 else 10)
        chosen = rng.permutation(cluster_items)
        train_u += [user] * 6
        train_i += chosen[:6].tolist()
        test_u += [user] * 4
        test_i += chosen[6:].tolist()
    n = len(train_u)
    train = make_interactions(
        train_u,
        train_i,
        timestamps=(1_000_000 + rng.integers(0, 10_000_000, n)).tolist(),
        ratings=rng.integers(1, 6, n).astype(float).tolist(),
        n_users=40,
        n_items=20,
    )
    test = make_interactions(test_u, test_i, n_users=40, n_items=20)
    return train, test


# ---------------------------------------------------------------------------------------------
# metrics, checked by hand


def test_metrics_match_hand_computed_values() -> None:
    recommended = np.array([[1, 2, 3], [7, 8, 9], [1, 2, 3], [5, -1, -1]])
    relevant = relevance_from_lists([[1, 3, 5], [9], [4], [5, 6]], n_items=10)
    m = ranking_metrics(recommended, relevant, k=3)
    # user 0: hits at ranks 1 and 3 of 3 relevant.
    #   DCG = 1/log2(2) + 1/log2(4) = 1.5; IDCG = 1 + 1/log2(3) + 1/log2(4) = 2.1309298
    #   nDCG = 0.7039180; P = 2/3; R = 2/3; AP = (1/1 + 2/3) / 3 = 0.5555556
    # user 1: hit at rank 3 of 1 relevant. DCG = 0.5, IDCG = 1 -> 0.5; P = 1/3; R = 1;
    #   AP = (1/3) / 1 = 0.3333333
    # user 2: no hit -> all 0
    # user 3: a list of one item, padded; hit at rank 1 of 2 relevant.
    #   DCG = 1; IDCG = 1 + 1/log2(3) = 1.6309298 -> 0.6131472; P = 1/3 (k stays 3);
    #   R = 1/2; AP = (1/1) / 2 = 0.5
    np.testing.assert_allclose(m.ndcg, [0.7039180, 0.5, 0.0, 0.6131472], atol=1e-7)
    np.testing.assert_allclose(m.precision, [2 / 3, 1 / 3, 0.0, 1 / 3])
    np.testing.assert_allclose(m.recall, [2 / 3, 1.0, 0.0, 0.5])
    np.testing.assert_allclose(m.average_precision, [5 / 9, 1 / 3, 0.0, 0.5])
    means = m.means()
    # nDCG = (0.7039180 + 0.5 + 0 + 0.6131472) / 4 = 0.4542663
    assert means.ndcg == pytest.approx(0.4542663, abs=1e-7)
    assert means.precision == pytest.approx((2 / 3 + 1 / 3 + 0 + 1 / 3) / 4)
    assert means.recall == pytest.approx((2 / 3 + 1 + 0 + 0.5) / 4)
    assert means.map == pytest.approx((5 / 9 + 1 / 3 + 0 + 0.5) / 4)


def test_map_divides_by_all_relevant_items_and_ndcg_ideal_is_capped_at_k() -> None:
    # 12 relevant items, the 10 recommended are all hits: every precision@r is 1, so
    # AP = 10 / 12 (Recommenders' `map`), not 1 (the newer `map_at_k`); nDCG = 1 because
    # IDCG sums only min(12, 10) ranks; recall = 10 / 12; precision = 1.
    relevant = relevance_from_lists([list(range(12))], n_items=20)
    m = ranking_metrics(np.arange(10)[None, :], relevant, k=10)
    assert m.average_precision[0] == pytest.approx(10 / 12)
    assert m.ndcg[0] == pytest.approx(1.0)
    assert m.recall[0] == pytest.approx(10 / 12)
    assert m.precision[0] == pytest.approx(1.0)


def test_only_the_first_k_columns_count() -> None:
    relevant = relevance_from_lists([[4]], n_items=5)
    m = ranking_metrics(np.array([[0, 1, 4]]), relevant, k=2)
    assert m.ndcg[0] == 0.0
    assert m.recall[0] == 0.0


@pytest.mark.parametrize(
    "recommended",
    [
        np.array([[1, 1, 2]]),  # duplicate
        np.array([[1, 10, 2]]),  # out of range
        np.array([[1, -1, 2]]),  # padding before an item
        np.array([[1.0, 2.0, 3.0]]),  # not item indices
    ],
)
def test_invalid_recommendations_are_rejected(recommended: IntArray) -> None:
    with pytest.raises(ValueError, match=r"."):
        check_recommendations(recommended, n_items=10)


def test_users_without_relevant_items_are_rejected() -> None:
    with pytest.raises(ValueError, match="relevant"):
        ranking_metrics(np.array([[0, 1]]), np.zeros((1, 3), dtype=np.bool_), k=2)


# ---------------------------------------------------------------------------------------------
# bootstrap


def test_bootstrap_interval_contains_the_mean_and_is_deterministic_by_seed() -> None:
    values = np.random.default_rng(1).random(400)
    first = bootstrap_interval(values, n_resamples=500, seed=7)
    again = bootstrap_interval(values, n_resamples=500, seed=7)
    other = bootstrap_interval(values, n_resamples=500, seed=8)
    assert first == again
    assert (first.low, first.high) != (other.low, other.high)
    assert first.estimate == pytest.approx(values.mean())
    assert first.low < first.estimate < first.high
    assert first.estimate in first
    # ~ +-1.96 * sd / sqrt(n) = +-1.96 * 0.2887 / 20 = +-0.028
    assert 0.02 < (first.high - first.low) / 2 < 0.036


def test_paired_difference_is_exact_for_a_constant_shift_and_narrow_when_paired() -> None:
    rng = np.random.default_rng(2)
    base = rng.random(300)
    shifted = paired_difference(base + 0.05, base, n_resamples=200, seed=0)
    assert shifted.estimate == pytest.approx(0.05)
    assert shifted.low == pytest.approx(0.05)
    assert shifted.high == pytest.approx(0.05)

    noisy = base + 0.02 + rng.normal(0.0, 0.01, 300)
    diff = paired_difference(noisy, base, n_resamples=500, seed=0)
    assert diff.low < 0.02 < diff.high
    unpaired = bootstrap_interval(noisy, n_resamples=500, seed=0)
    assert diff.high - diff.low < (unpaired.high - unpaired.low) / 5


# ---------------------------------------------------------------------------------------------
# splitters


def synthetic_log(seed: int = 3) -> Interactions:
    """Item j has j + 1 rows (1..30); random users and times; timestamps are unique row ids."""
    rng = np.random.default_rng(seed)
    items = rng.permutation(np.repeat(np.arange(30), np.arange(1, 31)))
    n = len(items)
    return make_interactions(
        rng.integers(0, 25, n).tolist(),
        items.tolist(),
        timestamps=rng.permutation(n).tolist(),
        n_users=25,
        n_items=30,
    )


def test_stratified_split_keeps_the_rounded_ratio_per_item_and_is_deterministic() -> None:
    log = synthetic_log()
    split = stratified_split(log, ratio=0.75, seed=42)
    train_counts = np.bincount(split.train.items, minlength=30)
    counts = np.arange(1, 31)
    np.testing.assert_array_equal(train_counts, np.round(0.75 * counts))
    # half-to-even: 2 -> round(1.5) = 2, 6 -> round(4.5) = 4, 10 -> round(7.5) = 8
    assert (train_counts[1], train_counts[5], train_counts[9]) == (2, 4, 8)
    assert train_counts[0] == 1  # round(0.75) = 1
    # a partition of the rows, each side in the original row order
    all_rows = np.sort(np.concatenate([split.train.timestamps, split.test.timestamps]))
    np.testing.assert_array_equal(all_rows, np.arange(len(log)))
    position = np.argsort(log.timestamps)
    assert np.all(np.diff(position[split.train.timestamps]) > 0)
    assert np.all(np.diff(position[split.test.timestamps]) > 0)

    again = stratified_split(log, ratio=0.75, seed=42)
    np.testing.assert_array_equal(again.train.timestamps, split.train.timestamps)
    other = stratified_split(log, ratio=0.75, seed=43)
    assert not np.array_equal(other.train.timestamps, split.train.timestamps)


def test_stratified_split_trains_on_the_smallest_draws_of_each_item() -> None:
    log = synthetic_log()
    split = stratified_split(log, ratio=0.75, seed=42)
    draws = np.random.RandomState(42).rand(len(log))  # one per row, in row order
    row_of = np.argsort(log.timestamps)  # timestamp -> row position
    for item in range(30):
        train_draws = draws[row_of[split.train.timestamps[split.train.items == item]]]
        test_draws = draws[row_of[split.test.timestamps[split.test.items == item]]]
        if len(train_draws) and len(test_draws):
            assert train_draws.max() < test_draws.min()


def test_time_split_holds_out_each_users_latest_rows_with_ties_in_file_order() -> None:
    # user 0: 5 rows -> round(1.0) = 1 test row; the latest time 5 occurs 3 times (rows 0, 4,
    # 6), the last of them in the file (row 6) counts as the latest.
    # user 1: 10 rows -> 2 test rows (the two rows at time 90). user 2: 1 row -> round(0.2) = 0.
    users = [0, 1, 0, 1, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2]
    times = [5, 10, 1, 30, 5, 3, 5, 20, 90, 40, 50, 60, 70, 80, 90, 7]
    log = make_interactions(users, list(range(16)), timestamps=times)
    split = time_split(log, test_fraction=0.2)
    assert split.test.items.tolist() == [6, 8, 14]
    assert split.train.items.tolist() == [i for i in range(16) if i not in (6, 8, 14)]
    assert len(split.train) + len(split.test) == len(log)
    again = time_split(log, test_fraction=0.2)
    np.testing.assert_array_equal(again.test.items, split.test.items)


def test_parse_and_index_a_recbole_style_file() -> None:
    inter = (
        "user_id:token\titem_id:token\trating:float\ttimestamp:float\n"
        "7\t30\t4\t100\n5\t10\t3\t200\n7\t10\t5\t150\n"
    )
    item = (
        "item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq\n"
        "10\tA Film\t1995\tDrama Sci-Fi\n20\tB Film\t\tComedy\n30\tC Film\t1990\tunknown\n"
    )
    dataset = build_dataset(inter, item)
    data = dataset.interactions
    assert (data.n_users, data.n_items) == (2, 3)
    assert data.users.tolist() == [1, 0, 1]  # raw 7 -> 1, raw 5 -> 0
    assert data.items.tolist() == [2, 0, 0]  # raw 30 -> 2, raw 10 -> 0
    assert data.ratings.tolist() == [4.0, 3.0, 5.0]
    assert data.timestamps.tolist() == [100, 200, 150]
    assert dataset.items.titles == ("A Film", "B Film", "C Film")
    assert dataset.items.years == (1995, None, 1990)
    assert dataset.items.genres[0] == ("Drama", "Sci-Fi")
    with pytest.raises(DataIntegrityError):
        parse_inter("user\titem\n1\t2\n")


# ---------------------------------------------------------------------------------------------
# baselines


def test_top_k_breaks_ties_by_item_index_and_pads() -> None:
    scores = np.array([[1.0, 3.0, 3.0, 0.0], [2.0, 2.0, 2.0, 2.0]])
    exclude = np.array([[False, False, False, False], [True, True, True, False]])
    assert top_k(scores, 3, exclude).tolist() == [[1, 2, 0], [3, -1, -1]]


@pytest.mark.parametrize(
    "model",
    [
        SAR(),
        ItemKNN(neighbors=5, shrinkage=1.0),
        EASE(l2=10.0),
        ALS(factors=4, regularization=5.0, alpha=4.0, iterations=10),
    ],
    ids=["SAR", "ItemKNN", "EASE", "ALS"],
)
def test_baselines_recover_two_disjoint_user_clusters(model: ScoringRecommender) -> None:
    train, test = two_clusters()
    model.fit(train)
    users = np.arange(40, dtype=np.int64)
    recommended = model.recommend(users, k=4)
    held_out = test.seen_mask()
    # the 4 unseen items of the user's own cluster are exactly the top 4
    for user in users:
        assert set(recommended[user].tolist()) == set(np.flatnonzero(held_out[user]).tolist())
    m = ranking_metrics(recommended, held_out, k=4)
    assert m.means().ndcg == pytest.approx(1.0)


def test_baselines_are_deterministic() -> None:
    train, _ = two_clusters()
    users = np.arange(40, dtype=np.int64)
    for build in (lambda: ALS(factors=4, iterations=3), lambda: ItemKNN(neighbors=3)):
        first = build().fit(train).scores(users)
        np.testing.assert_array_equal(first, build().fit(train).scores(users))


def test_mostpop_ranks_by_count_excludes_seen_and_pads() -> None:
    # user u has items 0..9-u: item j is used by 10 - j users; items 10, 11 by nobody
    users, items = zip(*[(u, j) for u in range(10) for j in range(10 - u)], strict=True)
    train = make_interactions(list(users), list(items), n_items=12)
    model = MostPop().fit(train)
    queried = np.array([9, 5, 0], dtype=np.int64)
    assert model.recommend(queried, k=3).tolist() == [[1, 2, 3], [5, 6, 7], [10, 11, -1]]
    assert model.recommend(queried[:1], k=3, exclude_seen=False).tolist() == [[0, 1, 2]]


def test_sar_affinity_decays_with_a_thirty_day_half_life() -> None:
    day = 24 * 60 * 60
    # user 0 rated item 0 (rating 4) 30 days before user 1's latest rating, and item 1 (rating 2)
    # at that latest time: affinities 4 * 0.5 = 2 and 2 * 1 = 2.
    train = make_interactions(
        [0, 0, 1, 1], [0, 1, 0, 2], timestamps=[0, 30 * day, 0, 30 * day], ratings=[4, 2, 1, 1]
    )
    model = SAR().fit(train)
    assert model._affinity is not None and model._similarity is not None
    np.testing.assert_allclose(model._affinity[0], [2.0, 2.0, 0.0])
    # jaccard: item 0 has users {0, 1}, item 2 has {1}: 1 shared / 2 in the union = 1/2;
    # items 1 ({0}) and 2 ({1}) share nobody -> 0
    assert model._similarity[0, 2] == pytest.approx(0.5)
    assert model._similarity[1, 2] == pytest.approx(0.0)
    assert math.isclose(model._similarity[0, 0], 1.0)


# ---------------------------------------------------------------------------------------------
# the harness


def test_evaluate_split_tunes_on_inner_and_scores_each_model_once() -> None:
    train, test = two_clusters()
    split = Split("synthetic", train, test)
    inner = stratified_split(train, 0.75, 42, name="synthetic-inner")
    metadata = ItemMetadata(tuple(range(20)), ("t",) * 20, (None,) * 20, ((),) * 20)
    calls: list[tuple[int, int]] = []

    def service(train_part: Interactions, items: ItemMetadata, inner_split: Split) -> ServiceFit:
        calls.append((len(train_part), len(inner_split.train)))
        model = EASE(l2=2.0).fit(train_part)
        return ServiceFit(model.recommend, configs_tuned=1, params={"l2": 2.0}, name="svc")

    grid = ({"l2": 1.0}, {"l2": 10.0}, {"l2": 1e6})
    specs = (ModelSpec("MostPop", MostPop), ModelSpec("EASE", EASE, grid))
    report = evaluate_split(
        split,
        inner,
        metadata,
        description="two clusters",
        specs=specs,
        service_model=service,
        n_resamples=100,
    )
    assert calls == [(len(train), len(inner.train))]
    assert report.test_scorings == {"MostPop": 1, "EASE": 1, "svc": 1}
    ease = report.result("EASE")
    # the chosen config is the best on the inner split (first one wins a tie)
    inner_users = inner.test.active_users()
    inner_scores = [
        ranking_metrics(
            EASE(**params).fit(inner.train).recommend(inner_users, 10),
            inner.test.seen_mask()[inner_users],
            k=10,
        )
        .means()
        .ndcg
        for params in grid
    ]
    assert ease.params == grid[int(np.argmax(inner_scores))]
    assert ease.inner_ndcg == pytest.approx(max(inner_scores))
    assert ease.configs_tuned == 3
    assert ease.delta_vs_reference is None
    assert report.result("svc").delta_vs_reference is not None
    mostpop = report.result("MostPop")
    assert mostpop.configs_tuned == 0
    assert mostpop.delta_vs_reference is not None
    assert mostpop.delta_vs_reference.high < 0
    markdown = report.to_markdown()
    assert "| model | nDCG@10 [95% CI]" in markdown
    assert "Configurations scored on the test split: 3" in markdown


def test_test_split_evaluator_refuses_a_second_scoring_and_seen_items() -> None:
    train, test = two_clusters()
    evaluator = SplitEvaluator(Split("s", train, test), k=4, once=True)
    model = EASE(l2=10.0).fit(train)
    evaluator.evaluate("EASE", model.recommend)
    with pytest.raises(RuntimeError, match="already scored"):
        evaluator.evaluate("EASE", model.recommend)

    def leaky(users: IntArray, k: int) -> IntArray:
        return model.recommend(users, k, exclude_seen=False)

    with pytest.raises(ValueError, match="in train"):
        evaluator.evaluate("leaky", leaky)


def test_list_metrics_measure_miscalibration_and_coverage_by_hand() -> None:
    # Items 0-1: genre A, item 2: genre B, item 3: no genre (counts as the catalog: 2/3 A).
    metadata = ItemMetadata((0, 1, 2, 3), ("t",) * 4, (None,) * 4, (("A",), ("A",), ("B",), ()))
    genres, catalog = item_genre_rows(metadata)
    assert catalog.tolist() == pytest.approx([2 / 3, 1 / 3])
    history = np.array([[True, False, False, False], [True, False, True, False]])
    lists = list_metrics(np.array([[1, -1], [1, 3]]), history, genres, catalog, k=2)

    # user 0 likes only A and gets A: only the smoothing is left
    q0 = 0.99 * 1.0 + 0.01 * (2 / 3)
    # user 1 likes A and B half and half and gets A plus the catalog's mix
    q1 = 0.99 * np.array([(1 + 2 / 3) / 2, (1 / 3) / 2]) + 0.01 * np.array([2 / 3, 1 / 3])
    expected1 = 0.5 * np.log(0.5 / q1[0]) + 0.5 * np.log(0.5 / q1[1])
    assert lists.miscalibration.tolist() == pytest.approx([np.log(1 / q0), expected1], rel=1e-5)
    assert lists.coverage == pytest.approx(2 / 4)


def test_the_service_benchmark_path_never_sees_the_test_rows() -> None:
    """The same train part with two different test parts: the service's lists are the same."""
    train, test = two_clusters()
    genres = tuple(("Drama",) if i < 10 else ("Comedy",) for i in range(20))
    metadata = ItemMetadata(
        tuple(range(20)), tuple(f"m{i}" for i in range(20)), (2000,) * 20, genres
    )
    inner = stratified_split(train, 0.75, 42, name="synthetic-inner")
    other = make_interactions(
        test.users.tolist(), ((test.items + 7) % 20).tolist(), n_users=40, n_items=20
    )
    lists = []
    for test_part in (test, other):
        fitted = service_model(config=FitConfig(als_grid=((8, 5.0, 2.0),), als_iterations=3))(
            train, metadata, inner
        )
        users = np.arange(40, dtype=np.int64)
        lists.append([f.recommend(users, 10).tolist() for f in fitted])
        report = evaluate_split(
            Split("synthetic", train, test_part),
            inner,
            metadata,
            description="two clusters",
            specs=(ModelSpec("EASE", EASE, ({"l2": 10.0},)),),
            service_model=lambda t, i, s, fitted=fitted: fitted,
            n_resamples=50,
        )
        # the default configuration leads the table, whatever its score
        lines = report.to_markdown().splitlines()
        first_row = lines[next(i for i, x in enumerate(lines) if x.startswith("|---")) + 1]
        assert first_row.startswith("| **service (default, λ = ")
    assert lists[0] == lists[1]


def test_global_time_split_cuts_everybody_at_one_instant() -> None:
    # user 0: t 1..5; user 1: t 6..10 (only after the cut); user 2: t 3, 9 on item 5 (new)
    data = make_interactions(
        [0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 2, 2],
        [0, 1, 2, 3, 4, 0, 1, 2, 3, 4, 0, 5],
        timestamps=[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 3, 9],
    )
    split = global_time_split(data, 0.5)

    cut = 5  # the lower 50% quantile of the 12 timestamps
    assert split.train.timestamps.max() <= cut
    assert len(split.train) == 6
    # after the cut: user 1 has no train row, user 2's row is on an item unseen in train
    assert len(split.test) == 0
    later = global_time_split(data, 0.75)
    assert set(later.test.users.tolist()) == {1}  # user 1 now has rows on both sides
    assert (later.test.timestamps > later.train.timestamps.max()).all()


def test_evaluate_writes_a_generated_quality_block_on_synthetic_data(tmp_path: Path) -> None:
    target = tmp_path / "benchmarks.md"
    target.write_text("# Benchmarks\n\nkept text\n")

    result = CliRunner().invoke(
        app, ["evaluate", "--dataset", "synthetic", "--seeds", "42,7", "--write", str(target)]
    )

    assert result.exit_code == 0, result.output
    text = target.read_text()
    assert text.startswith("# Benchmarks\n\nkept text\n")
    block = text[
        text.index("<!-- bench:quality:start -->") : text.index("<!-- bench:quality:end -->")
    ]
    for expected in ("- Date: ", "- Commit: ", "- Machine: ", "- Command: `recommender evaluate"):
        assert expected in block
    assert "### Headline (generated)" in block
    assert "### Split `global-time`" in block
    assert "| 42 |" in block and "| 7 |" in block  # the seeds table
    assert "Self-test" not in block and "published" not in block.replace(
        "not comparable with published", ""
    )
    tables = [line for line in block.splitlines() if line.startswith("| ")]
    heads = [i for i, line in enumerate(tables) if line.startswith("| model |")]
    assert all(tables[i + 1].startswith("| **service (default") for i in heads)
