"""The catalog as the engine needs it: arrays aligned with the model's items (then the catalog's
movies the model has never seen, so that new movies can be recommended too), and the short
lists retrieval draws from (most popular, trending, per genre, per release year, per keyword:
available movies only, most popular first). Built off the request path whenever the model or the
catalog changes."""

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
from interaction_recommender.model.calibration import genre_distribution

__all__ = ["SHORT_LIST", "CatalogView", "build_catalog_view", "keywords_of"]

_WORD = re.compile(r"[^\W_]{2,}", re.UNICODE)
_STOP_WORDS = frozenset({"the", "and", "of", "in", "on", "a", "an", "to", "for", "with", "at"})

SHORT_LIST = 500
"""Length of each precomputed list retrieval draws from (more than any retrieval setting)."""

Items = npt.NDArray[np.int64]


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
    genre_distribution: npt.NDArray[np.float64]
    """The catalog's genre distribution (each movie with genres split evenly over them; every
    movie, available or not, so that each genre of ``genres`` has a positive share)."""
    primary_genre: npt.NDArray[np.int32]
    """Index of the movie's first genre, -1 if none."""
    release_year: npt.NDArray[np.int32]
    """0 when unknown."""
    keyword_items: dict[str, Items]
    """Lower-case word of a title or genre -> available items that have it, most popular first."""
    keyword_sorted: dict[str, Items]
    """The same items in ascending order, for membership tests (``matches``)."""
    index: dict[UUID, int]
    """Movie id -> position in ``ids``."""
    sorted_ids: npt.NDArray[np.void]
    """The ids as 16-byte values (dtype V16), sorted: ``positions`` looks many up at once."""
    sorted_positions: Items
    """Position in ``ids`` of each ``sorted_ids`` entry."""
    popularity: npt.NDArray[np.float32]
    """The model's popularity per item, 0 for movies the model does not know."""
    trending: npt.NDArray[np.float32]
    popular: Items
    """The SHORT_LIST most popular available items, most popular first."""
    trending_top: Items
    """The SHORT_LIST most trending available items."""
    genre_top: list[Items]
    """Per genre: its SHORT_LIST most popular available items."""
    year_top: dict[int, Items]
    """Per release year: its SHORT_LIST most popular available items."""
    fresh_by_genre: list[Items]
    """Per genre: its SHORT_LIST newest available movies the model does not know (no factors,
    no neighbours, no popularity yet), newest release first: how new movies are found."""

    @property
    def n_items(self) -> int:
        return len(self.ids)

    def matches(self, words: Iterable[str], items: Items) -> npt.NDArray[np.bool_]:
        """Which of ``items`` have one of ``words`` in their title or genres (a binary search per
        word: a common word may match a third of the catalog)."""
        found = np.zeros(items.size, dtype=np.bool_)
        for word in words:
            sorted_items = self.keyword_sorted.get(word)
            if sorted_items is None or sorted_items.size == 0:
                continue
            at = np.minimum(np.searchsorted(sorted_items, items), sorted_items.size - 1)
            found |= sorted_items[at] == items
        return found

    def positions(self, movies: npt.NDArray[np.void]) -> Items:
        """Position in ``ids`` of each 16-byte movie id, -1 for a movie not in the view."""
        if movies.size == 0 or not self.ids:
            return np.full(movies.size, -1, dtype=np.int64)
        at = np.minimum(np.searchsorted(self.sorted_ids, movies), len(self.ids) - 1)
        found: Items = np.where(self.sorted_ids[at] == movies, self.sorted_positions[at], -1)
        return found


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
    popularity = _padded(model.popularity, n)
    trending = _padded(model.trending, n)
    # Most popular first, ties by catalog order: every short list is a slice of this order.
    by_popularity = np.lexsort((np.arange(n), -popularity))
    ranked = by_popularity[available[by_popularity]]
    rank = np.empty(n, dtype=np.int64)
    rank[by_popularity] = np.arange(n)
    by_trending = np.lexsort((np.arange(n), -trending))
    by_keyword = {
        w: _by_rank(np.asarray(items, dtype=np.int64), rank, available)
        for w, items in keywords.items()
    }
    raw_ids = np.frombuffer(b"".join(movie_id.bytes for movie_id in ids), dtype="V16")
    id_order = np.argsort(raw_ids, kind="stable").astype(np.int64)
    unknown = np.arange(model.n_items, n, dtype=np.int64)  # catalog movies after the model's
    fresh = unknown[np.lexsort((unknown, -years[unknown]))]  # available by construction
    return CatalogView(
        model_version=model.version,
        catalog_version=catalog_version,
        ids=ids,
        n_model=model.n_items,
        available=available,
        genres=genre_names,
        genre_matrix=genre_matrix,
        genre_counts=np.maximum(genre_matrix.sum(axis=1), 1.0),
        genre_distribution=genre_distribution(genre_matrix),
        primary_genre=primary,
        release_year=years,
        keyword_items=by_keyword,
        keyword_sorted={w: np.sort(items) for w, items in by_keyword.items()},
        index={movie_id: i for i, movie_id in enumerate(ids)},
        sorted_ids=raw_ids[id_order],
        sorted_positions=id_order,
        popularity=popularity,
        trending=trending,
        popular=ranked[:SHORT_LIST],
        trending_top=by_trending[available[by_trending]][:SHORT_LIST],
        genre_top=[
            ranked[genre_matrix[ranked, g] > 0][:SHORT_LIST] for g in range(len(genre_names))
        ],
        year_top={
            int(year): ranked[years[ranked] == year][:SHORT_LIST]
            for year in np.unique(years[ranked])
            if year > 0
        },
        fresh_by_genre=[
            fresh[genre_matrix[fresh, g] > 0][:SHORT_LIST] for g in range(len(genre_names))
        ],
    )


def _padded(values: npt.NDArray[np.float32], n: int) -> npt.NDArray[np.float32]:
    padded = np.zeros(n, dtype=np.float32)
    padded[: values.size] = values
    return padded


def _by_rank(items: Items, rank: Items, available: npt.NDArray[np.bool_]) -> Items:
    """The available ones among ``items``, most popular first (every one of them: a keyword's
    match decides a search column, so the list is not cut)."""
    kept = items[available[items]]
    return kept[np.argsort(rank[kept], kind="stable")]
