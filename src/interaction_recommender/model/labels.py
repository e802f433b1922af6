"""Implicit-feedback labels: how much a user's interactions with a movie say they like it.

One definition serves training (labels of the user-item matrix) and serving (the user's history
vector at request time), so the model is always fed what it was trained on. The weights travel
inside the model artifact.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from uuid import UUID

import numpy as np
import numpy.typing as npt

from interaction_recommender.features.profile import (
    COMPLETED,
    FAVORITE_ADDED,
    FAVORITE_REMOVED,
    SEEN,
    UserProfile,
    profile_of,
)
from interaction_recommender.features.state import UserFeatures
from interaction_recommender.settings import Settings

__all__ = ["LabelWeights", "profile_labels", "user_labels"]


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
    ignored_twice: float = 0.0
    """Training only: a movie shown to the user in at least two impressions and never touched
    at or after them (training/impressions.py), when it has no other label; 0 (the default)
    turns it off. -0.1 was the default until fresh seeds with a plausible audience withdrew it
    (docs/recommendations.md, "Training with impressions"; docs/benchmarks.md, "Feedback
    replay")."""

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


def profile_labels(profile: UserProfile, weights: LabelWeights) -> npt.NDArray[np.float64]:
    """The label of each movie of a user's serving profile (positive: liked; negative: disliked;
    NaN: no label), vectorised: the one definition, for serving (per request) and training
    (``user_labels``). Movies only in the compact `seen` set (completed or rated long ago, out
    of the bounded history) count as completed; then the watch history's value replaces it; a
    rating adds to a non-negative value; a favorite added or removed adds its weight."""
    flags = profile.flags
    labels = np.where((flags & SEEN) > 0, weights.completed, np.nan)
    watched = ~np.isnan(profile.progress)
    extra_views = np.minimum(np.maximum(profile.views.astype(np.int64) - 1, 0), 3)
    watch_value = np.where(
        (flags & COMPLETED) > 0,
        weights.completed + weights.rewatch * extra_views,
        np.where(
            profile.progress < weights.abandon_below,
            weights.abandoned,
            weights.partial * profile.progress / 100.0,
        ),
    )
    labels = np.where(watched, watch_value, labels)
    rated = ~np.isnan(profile.rating)
    rating_value = weights.rating_base + weights.rating_slope * (profile.rating - 3.0)
    labels = np.where(rated, np.maximum(np.nan_to_num(labels, nan=0.0), 0.0) + rating_value, labels)
    favorite = np.where(
        (flags & FAVORITE_ADDED) > 0,
        weights.favorite,
        np.where((flags & FAVORITE_REMOVED) > 0, weights.unfavorite, np.nan),
    )
    has_favorite = ~np.isnan(favorite)
    labels = np.where(has_favorite, np.nan_to_num(labels, nan=0.0) + favorite, labels)
    result: npt.NDArray[np.float64] = labels
    return result


def user_labels(features: UserFeatures, weights: LabelWeights) -> dict[UUID, float]:
    """Movie -> label weight from a user's features (``profile_labels`` of their profile)."""
    profile = profile_of(features)
    values = profile_labels(profile, weights)
    return {
        UUID(bytes=movie.tobytes()): float(value)
        for movie, value in zip(profile.movies, values, strict=True)
        if not np.isnan(value)
    }
