"""The online metrics' math against values computed by hand."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from interaction_recommender.feedback.online import mean_interval, outcomes, summarize, wilson
from interaction_recommender.feedback.repository import FeedbackRow, Impression

NOW = datetime(2026, 11, 1, tzinfo=UTC)
A, B, C, D, E, F = (str(uuid.UUID(int=n)) for n in range(1, 7))


def test_wilson_matches_published_values() -> None:
    # Wilson (1927) score interval; 5/10 and 0/20 are the textbook examples.
    assert wilson(5, 10) == pytest.approx((0.2366, 0.7634), abs=1e-4)
    low, high = wilson(0, 20)
    assert low == 0.0
    assert high == pytest.approx(0.1611, abs=1e-4)
    assert wilson(0, 0) == (0.0, 1.0)


def test_mean_interval() -> None:
    mean, low, high = mean_interval([0.5, 0.0, 1.0])
    half = 1.959963984540054 * 0.5 / 3**0.5  # sample std 0.5
    assert (mean, low, high) == pytest.approx((0.5, 0.5 - half, 0.5 + half))
    assert mean_interval([]) == (0.0, 0.0, 0.0)


def _impression(items: list[str], policy: str = "home", version: str = "v1") -> Impression:
    return Impression(uuid.uuid4(), uuid.uuid4(), policy, policy, version, False,
                      [(m, 1.0) for m in items], NOW)  # fmt: skip


def _feedback(impression: Impression, clicked: str | None, **changes: object) -> FeedbackRow:
    row = FeedbackRow(
        feedback_id=uuid.uuid4(),
        dedupe_key=str(uuid.uuid4()),
        source="explicit",
        user_id=impression.user_id,
        recommendation_id=impression.recommendation_id,
        join_method="recommendationId",
        action=None,
        context="home",
        model_version="v1",
        impression_count=len(impression.items),
        clicked_item_id=uuid.UUID(clicked) if clicked else None,
        click_position=None,
        watch_time_sec=None,
        occurred_at=NOW,
        received_at=NOW,
    )
    return replace(row, **changes)  # type: ignore[arg-type]


def test_summary_of_a_small_example() -> None:
    one = _impression([A, B, C])  # B clicked (position 2) and watched
    two = _impression([A, D, E])  # nothing
    three = _impression([C, A, B])  # A (2) and C (1) clicked: first click at 1
    four = _impression([F], policy="similar:fallback")  # nothing
    feedback = [
        _feedback(one, B),
        _feedback(one, B, source="implicit", action="watch"),
        _feedback(three, A),
        _feedback(three, C),
        _feedback(two, D, action="dismiss"),  # a dismissal is not a click
    ]
    groups = {
        (g["context"], g["modelVersion"]): g
        for g in summarize(outcomes([one, two, three, four], feedback), catalog_size=10)
    }

    home = groups[("home", "v1")]
    assert home["impressions"] == 3
    assert home["clickThroughRate"]["value"] == pytest.approx(2 / 3)
    assert home["watchThroughRate"]["value"] == pytest.approx(1 / 3)
    assert home["meanReciprocalRank"]["value"] == pytest.approx((1 / 2 + 0 + 1) / 3)
    assert home["meanReciprocalRank"]["low"] == 0.0  # 0.5 - 0.566, clamped
    assert home["catalogCoverage"]["value"] == pytest.approx(5 / 10)
    assert home["clickThroughRate"]["low"] == pytest.approx(wilson(2, 3)[0])

    similar = groups[("similar", "v1")]
    assert similar["impressions"] == 1
    assert similar["clickThroughRate"]["value"] == 0.0

    everything = groups[("all", "all")]
    assert everything["impressions"] == 4
    assert everything["clickThroughRate"]["value"] == pytest.approx(2 / 4)
    assert everything["meanReciprocalRank"]["value"] == pytest.approx((1 / 2 + 1) / 4)
    assert everything["catalogCoverage"]["distinctMovies"] == 6
