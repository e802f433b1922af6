"""Implicit-feedback labels: how much a user's interactions with a movie say they like it.

One definition serves training (labels of the user-item matrix) and serving (the user's history
vector at request time), so the model is always fed what it was trained on. The weights travel
inside the model artifact.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from uuid import UUID

from interaction_recommender.features.state import UserFeatures
from interaction_recommender.settings import Settings

__all__ = ["LabelWeights", "user_labels"]


@dataclass(frozen=True)
class LabelWeights:
    """Every weight of the labels (settings LABEL_*; stored in the model's manifest)."""

    completed: float = 1.0
    """A view watched to completion."""
    rewatch: float = 0.5
    """Added per extra view of a completed movie (up to three): rewatches are strong positives."""
    partial: float = 0.8
    """Times the highest progress (0..1) of a movie not completed."""
    abandoned: float = -0.3
    """A movie left below `abandon_below` percent and never completed: a weak negative."""
    abandon_below: float = 25.0
    rating_base: float = 1.0
    """A rating means the user watched the movie; every rating is a positive of this weight..."""
    rating_slope: float = 0.25
    """... plus this much per star above 3 (minus below): 1 star 0.5, 5 stars 1.5."""
    favorite: float = 1.0
    unfavorite: float = -0.5
    """A favorite removed."""
    ignored_twice: float = -0.1
    """Training only: a movie shown to the user in at least two impressions and never touched
    at or after them (training/impressions.py), when it has no other label; 0 turns it off.
    -0.1: the weight that passed the replay benchmark (docs/benchmarks.md, "Feedback replay");
    -0.3 lowered offline nDCG and -1 lowered everything, so keep it small."""

    def as_dict(self) -> dict[str, float]:
        return asdict(self)

    @classmethod
    def from_settings(cls, settings: Settings) -> LabelWeights:
        return cls(
            completed=settings.label_completed,
            rewatch=settings.label_rewatch,
            partial=settings.label_partial,
            abandoned=settings.label_abandoned,
            rating_base=settings.label_rating_base,
            rating_slope=settings.label_rating_slope,
            favorite=settings.label_favorite,
            unfavorite=settings.label_unfavorite,
            ignored_twice=settings.label_ignored_twice,
        )


def user_labels(features: UserFeatures, weights: LabelWeights) -> dict[UUID, float]:
    """Movie -> label weight from a user's features (positive: liked; negative: disliked).
    Movies only in the compact `seen` set (completed or rated long ago, out of the bounded
    history) count as completed."""
    labels: dict[UUID, float] = {}
    for movie_id in features.seen:
        labels[movie_id] = weights.completed
    for movie_id, entry in features.watch_history.items():
        if entry.completed:
            extra_views = min(max(entry.views - 1, 0), 3)
            value = weights.completed + weights.rewatch * extra_views
        elif entry.progress < weights.abandon_below:
            value = weights.abandoned
        else:
            value = weights.partial * entry.progress / 100.0
        labels[movie_id] = value
    for movie_id, rating in features.ratings.items():
        value = weights.rating_base + weights.rating_slope * (rating.rating - 3.0)
        labels[movie_id] = max(labels.get(movie_id, 0.0), 0.0) + value
    for movie_id, favorite in features.favorites.items():
        labels[movie_id] = labels.get(movie_id, 0.0) + (
            weights.favorite if favorite.added else weights.unfavorite
        )
    return labels
