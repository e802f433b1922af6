"""The baseline of bench/ingest.py: a bare FastAPI app with one POST endpoint.

It parses the same watch-event JSON as POST /api/v1/events/watch into a small pydantic model and
answers a small pydantic response (requestId, status, serverTimestamp), with no storage, no
middleware and no dependencies. It runs under the same uvicorn settings as `recommender serve`
(uvloop, httptools, one process, access log off), so the ratio service / bare is the cost of
everything the service adds per request.

    .venv/bin/python bench/bare_app.py --port 8001
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from typing import Literal
from uuid import UUID, uuid4

from fastapi import FastAPI
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


app = FastAPI()


@app.post("/events/watch")
async def track_watch(event: WatchEvent) -> EventResponse:
    return EventResponse(
        request_id=event.request_id or uuid4(),
        status="accepted",
        server_timestamp=datetime.now(UTC),
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
