"""The baselines of bench/ingest.py and bench/recommend.py: a bare FastAPI app, two endpoints.

- POST /events/watch parses the same watch-event JSON as POST /api/v1/events/watch into a small
  pydantic model and answers a small pydantic response (requestId, status, serverTimestamp).
- GET /recommend/{userId}?context=home&k=20 answers 20 fixed recommendations in the shape of
  GET /api/v1/recommend/{userId} (RecommendationResponse: movieId, score and reasons per item, a
  new recommendationId and generatedAt per request), validated by its pydantic response model.

No storage, no middleware, no dependencies. It runs under the same uvicorn settings as
`recommender serve` (uvloop, httptools, one process, access log off), so the ratio service / bare
is the cost of everything the service adds per request.

    .venv/bin/python bench/bare_app.py --port 8001
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from random import Random
from typing import Literal
from uuid import UUID, uuid4

from fastapi import FastAPI, Query
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel


class _Camel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, validate_by_name=True, extra="ignore")


class WatchMetadata(_Camel):
    watch_duration: int | None = Field(default=None, ge=0)
    device: str | None = None
    quality: str | None = None
    session_id: str | None = None
    progress_percent: float | None = Field(default=None, ge=0, le=100)


class WatchEvent(_Camel):
    request_id: UUID | None = None
    user_id: UUID
    movie_id: UUID
    client_timestamp: AwareDatetime | None = None
    metadata: WatchMetadata | None = None


class EventResponse(_Camel):
    request_id: UUID
    status: Literal["accepted", "duplicate"]
    server_timestamp: datetime


class RecommendedMovie(_Camel):
    movie_id: UUID
    score: float
    reasons: list[str]


class RecommendationResponse(_Camel):
    user_id: UUID
    model_version: str
    cached: bool
    recommendations: list[RecommendedMovie]
    generated_at: datetime
    context: str
    recommendation_id: UUID
    policy: str


def _fixed_items(count: int = 20) -> list[RecommendedMovie]:
    """`count` items with reasons of the service's vocabulary (model/reasons.py)."""
    rng = Random(20)
    ids = [UUID(int=rng.getrandbits(128), version=4) for _ in range(2 * count)]
    return [
        RecommendedMovie(
            movie_id=ids[i],
            score=round(0.95 - 0.01 * i, 6),
            reasons=[
                f"because_you_watched:{ids[count + i]}",
                "collaborative",
                "matches_genre:Drama",
            ],
        )
        for i in range(count)
    ]


_ITEMS = _fixed_items()

app = FastAPI()


@app.post("/events/watch")
async def track_watch(event: WatchEvent) -> EventResponse:
    return EventResponse(
        request_id=event.request_id or uuid4(),
        status="accepted",
        server_timestamp=datetime.now(UTC),
    )


@app.get("/recommend/{user_id}")
async def recommend(
    user_id: UUID,
    k: int = Query(default=20, ge=1),
    context: str = Query(default="home", max_length=200),
) -> RecommendationResponse:
    return RecommendationResponse(
        user_id=user_id,
        model_version="bare",
        cached=False,
        recommendations=_ITEMS[:k],
        generated_at=datetime.now(UTC),
        context=context,
        recommendation_id=uuid4(),
        policy="home",
    )


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    args = parser.parse_args()
    # The same server settings as interaction_recommender.cli.serve.
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_config=None,
        server_header=False,
    )


if __name__ == "__main__":
    main()
