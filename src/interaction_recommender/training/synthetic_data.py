"""A small synthetic stand-in for MovieLens-100K with the same shape (ratings with timestamps,
items with titles, years and genres): `recommender evaluate --dataset synthetic` runs the whole
benchmark path on it in seconds. A smoke test of the harness, never evidence of quality: its
rows are not comparable with published results, so it has no self-test and no published rows."""

from __future__ import annotations

import numpy as np

from interaction_recommender.training.movielens import Interactions, ItemMetadata, MovieLens100K

__all__ = ["synthetic_dataset"]

_GENRES = ("Drama", "Comedy", "Horror", "Sci-Fi")


def synthetic_dataset(
    seed: int = 0, *, users: int = 240, items: int = 120, per_user: int = 24
) -> MovieLens100K:
    """Users in four taste clusters (one genre each, with a fifth of their ratings anywhere),
    popularity skewed within each cluster, ratings 1-5, timestamps over 200 days."""
    rng = np.random.default_rng(seed)
    genre_of = np.arange(items) % len(_GENRES)
    popularity = 1.0 / (1.0 + rng.permutation(items)) ** 0.8
    rows_u, rows_i, ratings, stamps = [], [], [], []
    for user in range(users):
        taste = user % len(_GENRES)
        weights = popularity * np.where(genre_of == taste, 4.0, 0.25)
        picked = rng.choice(items, size=per_user, replace=False, p=weights / weights.sum())
        rows_u += [user] * per_user
        rows_i += picked.tolist()
        ratings += np.where(genre_of[picked] == taste, rng.integers(3, 6, per_user), 2).tolist()
        stamps += np.sort(rng.integers(0, 200 * 86_400, per_user) + 880_000_000).tolist()
    interactions = Interactions(
        users=np.asarray(rows_u, dtype=np.int64),
        items=np.asarray(rows_i, dtype=np.int64),
        ratings=np.asarray(ratings, dtype=np.float64),
        timestamps=np.asarray(stamps, dtype=np.int64),
        n_users=users,
        n_items=items,
    )
    metadata = ItemMetadata(
        raw_ids=tuple(range(1, items + 1)),
        titles=tuple(f"{_GENRES[g]} story {i}" for i, g in enumerate(genre_of.tolist())),
        years=tuple(1990 + i % 10 for i in range(items)),
        genres=tuple((_GENRES[g],) for g in genre_of.tolist()),
    )
    return MovieLens100K(
        interactions,
        np.arange(1, users + 1, dtype=np.int64),
        np.arange(1, items + 1, dtype=np.int64),
        metadata,
    )
