"""Streaming user features: the pure extraction (model.py, extractor.py) and, around it, the
stores, the consumer and the API."""

from interaction_recommender.features.extractor import FORMAT_VERSION
from interaction_recommender.features.model import (
    DEFAULT_CONFIG,
    REFERENCE_INSTANT,
    SEEN_COMPLETED,
    SEEN_RATED,
    FavoriteEntry,
    FeatureConfig,
    RatingEntry,
    SearchEntry,
    UserFeatures,
    WatchEntry,
    apply_events,
    build_features,
    decode,
    encode,
    feature_document,
    genre_affinity_at,
    mark_dead_lettered,
    new_features,
)

__all__ = [
    "DEFAULT_CONFIG",
    "FORMAT_VERSION",
    "REFERENCE_INSTANT",
    "SEEN_COMPLETED",
    "SEEN_RATED",
    "FavoriteEntry",
    "FeatureConfig",
    "RatingEntry",
    "SearchEntry",
    "UserFeatures",
    "WatchEntry",
    "apply_events",
    "build_features",
    "decode",
    "encode",
    "feature_document",
    "genre_affinity_at",
    "mark_dead_lettered",
    "new_features",
]
