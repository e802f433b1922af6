"""The catalog as the engine needs it: arrays aligned with the model's items (then the catalog's
movies the model has never seen, so that new movies can be recommended too). Built off the
request path whenever the model or the catalog changes."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from uuid import UUID

import numpy as np
import numpy.typing as npt

from interaction_recommender.catalog.movie import CatalogMovie
from interaction_recommender.model.arrays import RecommenderModel

__all__ = ["CatalogView", "build_catalog_view", "keywords_of"]

_WORD = re.compile(r"[^\W_]{2,}", re.UNICODE)
_STOP_WORDS = frozenset({"the", "and", "of", "in", "on", "a", "an", "to", "for", "with", "at"})


def keywords_of(text: str) -> list[str]:
    return [w for w in _WORD.findall(text.lower()) if w not in _STOP_WORDS]


@dataclass(frozen=True)
class CatalogView:
    model_version: str
    catalog_version: int
    ids: list[UUID]
    """All items: the model's (same order) then catalog movies unknown to the model."""
    n_model: int
    available: npt.NDArray[np.bool_]
    genres: list[str]
    genre_matrix: npt.NDArray[np.float32]
    """(items, genres) 1.0 where the movie has the genre."""
    genre_counts: npt.NDArray[np.float32]
    """Genres per movie, at least 1 (the genre-affinity column divides by it every call)."""
    primary_genre: npt.NDArray[np.int32]
    """Index of the movie's first genre, -1 if none."""
    release_year: npt.NDArray[np.int32]
    """0 when unknown."""
    keyword_items: dict[str, npt.NDArray[np.int32]]
    """Lower-case word of a title or genre -> items that have it."""
    index: dict[UUID, int]
    """Movie id -> position in ``ids``."""

    @property
    def n_items(self) -> int:
        return len(self.ids)


def build_catalog_view(
    model: RecommenderModel, movies: Iterable[CatalogMovie], *, catalog_version: int
) -> CatalogView:
    by_id = {m.movie_id: m for m in movies}
    extra = sorted(
        (m.movie_id for m in by_id.values() if m.movie_id not in model.index and m.available),
        key=str,
    )
    ids = list(model.item_ids) + extra
    genre_names = sorted({g for m in by_id.values() for g in m.genres})
    genre_index = {g: i for i, g in enumerate(genre_names)}
    n = len(ids)
    available = np.zeros(n, dtype=np.bool_)
    genre_matrix = np.zeros((n, len(genre_names)), dtype=np.float32)
    primary = np.full(n, -1, dtype=np.int32)
    years = np.zeros(n, dtype=np.int32)
    keywords: dict[str, list[int]] = defaultdict(list)
    for i, movie_id in enumerate(ids):
        movie = by_id.get(movie_id)
        if movie is None:
            continue  # trained on, but no longer in the catalog: never recommended
        available[i] = movie.available
        for g in movie.genres:
            genre_matrix[i, genre_index[g]] = 1.0
        if movie.genres:
            primary[i] = genre_index[movie.genres[0]]
        years[i] = movie.release_year or 0
        words = set(keywords_of(movie.title or "")) | {
            w for g in movie.genres for w in keywords_of(g)
        }
        for word in words:
            keywords[word].append(i)
    return CatalogView(
        model_version=model.version,
        catalog_version=catalog_version,
        ids=ids,
        n_model=model.n_items,
        available=available,
        genres=genre_names,
        genre_matrix=genre_matrix,
        genre_counts=np.maximum(genre_matrix.sum(axis=1), 1.0),
        primary_genre=primary,
        release_year=years,
        keyword_items={w: np.asarray(items, dtype=np.int32) for w, items in keywords.items()},
        index={movie_id: i for i, movie_id in enumerate(ids)},
    )
