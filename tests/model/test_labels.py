"""Labels have one definition, now computed from the serving profile: on arbitrary feature states
it gives exactly what the per-movie definition of release 0.1 gave (written out below as the
reference), and the profile survives its storage encoding unchanged."""

from __future__ import annotations

import uuid
from collections import OrderedDict
from datetime import UTC, datetime

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from interaction_recommender.features.profile import decode_profile, encode_profile, profile_of
from interaction_recommender.features.state import (
    FavoriteEntry,
    RatingEntry,
    SearchEntry,
    UserFeatures,
    WatchEntry,
)
from interaction_recommender.model.labels import LabelWeights, user_labels

MOVIES = [uuid.UUID(int=i + 1, version=4) for i in range(12)]
AT = datetime(2026, 1, 1, tzinfo=UTC)


def reference_labels(features: UserFeatures, weights: LabelWeights) -> dict[uuid.UUID, float]:
    """The definition as release 0.1 wrote it, movie by movie."""
    labels: dict[uuid.UUID, float] = {}
    for movie_id in features.seen:
        labels[movie_id] = weights.completed
    for movie_id, entry in features.watch_history.items():
        if entry.completed:
            value = weights.completed + weights.rewatch * min(max(entry.views - 1, 0), 3)
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


watch = st.builds(
    lambda progress, views, completed: WatchEntry(
        progress, completed, views, 0, 60, AT, None, 60, progress, progress, False, 1
    ),
    st.floats(0, 100),
    st.integers(1, 8),
    st.booleans(),
)


@st.composite
def feature_states(draw: st.DrawFn) -> UserFeatures:
    movies = st.sampled_from(MOVIES)
    history = draw(st.dictionaries(movies, watch, max_size=8))
    ratings = draw(
        st.dictionaries(
            movies, st.builds(lambda r: RatingEntry(r, 1, AT), st.sampled_from([0.5, 1, 3, 4.5, 5]))
        )
    )
    favorites = draw(st.dictionaries(movies, st.builds(FavoriteEntry, st.booleans(), st.just(1))))
    seen = draw(st.dictionaries(movies, st.integers(1, 3), max_size=6))
    genres = draw(st.dictionaries(st.sampled_from(["Drama", "Comedy"]), st.floats(-5, 5)))
    return UserFeatures(
        user_id=uuid.uuid4(),
        version=draw(st.integers(0, 10**6)),
        watch_history=OrderedDict(history),
        ratings=OrderedDict(ratings),
        favorites=OrderedDict(favorites),
        seen=OrderedDict(seen),
        genre_affinity=genres,
        searches=[SearchEntry("space opera", AT)],
    )


weights_strategy = st.builds(
    LabelWeights,
    completed=st.floats(0.1, 2),
    rewatch=st.floats(0, 1),
    partial=st.floats(0.1, 1),
    abandoned=st.floats(-1, 0),
    abandon_below=st.floats(5, 50),
    rating_slope=st.floats(0, 0.5),
    favorite=st.floats(0, 2),
    unfavorite=st.floats(-1, 0),
)


@settings(max_examples=300, deadline=None)
@given(feature_states(), weights_strategy)
def test_profile_labels_equal_the_per_movie_definition(
    features: UserFeatures, weights: LabelWeights
) -> None:
    assert user_labels(features, weights) == reference_labels(features, weights)


@settings(max_examples=200, deadline=None)
@given(feature_states())
def test_the_profile_survives_its_encoding(features: UserFeatures) -> None:
    profile = profile_of(features)
    decoded = decode_profile(encode_profile(profile))

    assert decoded.version == profile.version
    assert decoded.movies.tobytes() == profile.movies.tobytes()
    np.testing.assert_array_equal(decoded.progress, profile.progress)
    np.testing.assert_array_equal(decoded.rating, profile.rating)
    np.testing.assert_array_equal(decoded.views, profile.views)
    np.testing.assert_array_equal(decoded.flags, profile.flags)
    assert decoded.genre_affinity_at(AT) == profile.genre_affinity_at(AT)
    assert decoded.recent_queries == profile.recent_queries == ("space opera",)
