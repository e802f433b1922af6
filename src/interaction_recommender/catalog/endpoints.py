"""Catalog routes: parse, call the catalog service, answer."""

from __future__ import annotations

import contextlib
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends
from fastapi.responses import Response
from pydantic import ValidationError

from interaction_recommender.catalog.messages import movie_document
from interaction_recommender.catalog.schemas import (
    Movie,
    MovieBatchItem,
    MovieBatchRequest,
    MovieBatchResponse,
    MovieFields,
)
from interaction_recommender.catalog.service import CatalogService
from interaction_recommender.deps import from_state
from interaction_recommender.errors import NotFound, validation_details
from interaction_recommender.http import json_response

__all__ = ["router"]

router = APIRouter(tags=["catalog"])

Movies = Annotated[CatalogService, Depends(from_state("movies"))]

_NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"description": "No movie with this id."}}


def _json(document: Any) -> Response:
    return json_response(document)


@router.put(
    "/movies/{movie_id}",
    response_model=Movie,
    summary="Create a movie or merge fields into it (absent and null fields are left unchanged)",
)
async def put_movie(movie_id: UUID, fields: MovieFields, movies: Movies) -> Response:
    return _json(movie_document(await movies.put(movie_id, fields)))


@router.get("/movies/{movie_id}", response_model=Movie, responses=_NOT_FOUND, summary="One movie")
async def get_movie(movie_id: UUID, movies: Movies) -> Response:
    row = await movies.get(movie_id)
    if row is None:
        raise NotFound("No movie with this id.")
    return _json(movie_document(row))


@router.post(
    "/movies/batch",
    response_model=MovieBatchResponse,
    response_model_exclude_none=True,
    summary="Create or merge up to 5,000 movies",
    description="Invalid items are rejected one by one; valid ones are merged in one transaction.",
)
async def put_movies(body: MovieBatchRequest, movies: Movies) -> Response:
    results: list[dict[str, Any]] = []
    valid: list[tuple[UUID, MovieFields]] = []
    for index, raw in enumerate(body.movies):
        try:
            item = MovieBatchItem.model_validate(raw)
        except ValidationError as exc:
            error = "; ".join(
                f"{d['field']}: {d['message']}" for d in validation_details(exc.errors())
            )
            results.append({"index": index, "status": "rejected", "error": error} | _raw_id(raw))
            continue
        valid.append((item.movie_id, item))
        results.append({"index": index, "movieId": item.movie_id, "status": "upserted"})
    await movies.put_many(valid)
    upserted = len(valid)
    return _json({"results": results, "upserted": upserted, "rejected": len(results) - upserted})


def _raw_id(raw: Any) -> dict[str, Any]:
    movie_id = raw.get("movieId") if isinstance(raw, dict) else None
    if isinstance(movie_id, str):
        with contextlib.suppress(ValueError):
            return {"movieId": UUID(movie_id)}
    return {}
