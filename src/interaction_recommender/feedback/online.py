"""Online metrics of what was shown and what people did with it, per context and model version.

For each impression: clicked (an explicit click on one of its items), the position of its first
click, watched (an explicit watch/watch time or an implicit watch attributed to it). Then, per
group:
- clickThroughRate, watchThroughRate: share of impressions with a click / a watch, with Wilson
  score 95% intervals (good at small counts and rates near 0, unlike the normal approximation);
- meanReciprocalRank: mean over impressions of 1/position of the first clicked item, 0 when
  nothing was clicked (the usual MRR convention), with a normal-approximation 95% interval;
- catalogCoverage: distinct movies shown / movies available now (a count over the whole period,
  not an estimate: no interval).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from interaction_recommender.feedback.messages import is_click, is_watch
from interaction_recommender.feedback.repository import FeedbackRow, Impression

__all__ = ["Outcome", "mean_interval", "outcomes", "summarize", "wilson"]

_Z95 = 1.959963984540054


@dataclass(frozen=True, slots=True)
class Outcome:
    context: str  # the policy's context name: home, detail, similar, search
    model_version: str
    movies: tuple[str, ...]
    first_click: int | None  # 1-based
    watched: bool


def wilson(successes: int, n: int, z: float = _Z95) -> tuple[float, float]:
    if n == 0:
        return (0.0, 1.0)
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return (max(0.0, centre - half), min(1.0, centre + half))


def mean_interval(values: list[float], z: float = _Z95) -> tuple[float, float, float]:
    """(mean, low, high): the mean with a normal-approximation interval (sample std)."""
    n = len(values)
    if n == 0:
        return (0.0, 0.0, 0.0)
    mean = sum(values) / n
    if n == 1:
        return (mean, mean, mean)
    variance = sum((v - mean) ** 2 for v in values) / (n - 1)
    half = z * math.sqrt(variance / n)
    return (mean, mean - half, mean + half)


def outcomes(shown: Iterable[Impression], feedback: Iterable[FeedbackRow]) -> list[Outcome]:
    by_impression: dict[UUID, list[FeedbackRow]] = defaultdict(list)
    for row in feedback:
        if row.recommendation_id is not None:
            by_impression[row.recommendation_id].append(row)
    result = []
    for impression in shown:
        rows = by_impression.get(impression.recommendation_id, [])
        clicks = [
            position
            for row in rows
            if is_click(row) and (position := _position(row, impression)) is not None
        ]
        result.append(
            Outcome(
                context=impression.policy.split(":", 1)[0],
                model_version=impression.model_version,
                movies=tuple(movie for movie, _ in impression.items),
                first_click=min(clicks) if clicks else None,
                watched=any(is_watch(row) for row in rows),
            )
        )
    return result


def _position(row: FeedbackRow, impression: Impression) -> int | None:
    if row.click_position is not None:
        return row.click_position
    return impression.position_of(row.clicked_item_id) if row.clicked_item_id else None


def summarize(items: list[Outcome], catalog_size: int) -> list[dict[str, Any]]:
    """One entry per (context, modelVersion), then one for everything ("all", "all")."""
    groups: dict[tuple[str, str], list[Outcome]] = defaultdict(list)
    for outcome in items:
        groups[(outcome.context, outcome.model_version)].append(outcome)
    result = [_group(c, v, g, catalog_size) for (c, v), g in sorted(groups.items())]
    result.append(_group("all", "all", items, catalog_size))
    return result


def _rate(successes: int, n: int) -> dict[str, float | int | None]:
    low, high = wilson(successes, n)
    return {"value": successes / n if n else None, "count": successes, "low": low, "high": high}


def _group(context: str, version: str, group: list[Outcome], catalog: int) -> dict[str, Any]:
    n = len(group)
    clicked = sum(1 for o in group if o.first_click is not None)
    watched = sum(1 for o in group if o.watched)
    mrr, low, high = mean_interval([1 / o.first_click if o.first_click else 0.0 for o in group])
    low, high = max(0.0, low), min(1.0, high)  # the normal approximation ignores the bounds
    distinct = len({movie for o in group for movie in o.movies})
    return {
        "context": context,
        "modelVersion": version,
        "impressions": n,
        "clickThroughRate": _rate(clicked, n),
        "watchThroughRate": _rate(watched, n),
        "meanReciprocalRank": {"value": mrr if n else None, "low": low, "high": high},
        "catalogCoverage": {
            "value": distinct / catalog if catalog else None,
            "distinctMovies": distinct,
            "catalogSize": catalog,
        },
    }
