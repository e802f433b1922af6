"""Event routes: parse, call the ingest service, answer. No SQL here."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import ValidationError

from interaction_recommender.deps import RuntimeDep, Transaction
from interaction_recommender.errors import validation_details
from interaction_recommender.events.schemas import (
    MODEL_BY_TYPE,
    BatchItemResult,
    BatchRequest,
    BatchResponse,
    EventResponse,
    EventType,
    FavoriteEvent,
    NewEvent,
    RatingEvent,
    SearchEvent,
    WatchEvent,
    WireEvent,
)
from interaction_recommender.events.service import IngestOutcome, ingest

__all__ = ["router"]

router = APIRouter(tags=["events"])


async def _ingest_one(
    event_type: EventType, event: WireEvent, conn: Transaction, runtime: RuntimeDep
) -> EventResponse:
    (outcome,) = await ingest(
        conn, [NewEvent.from_wire(event_type, event)], topic=runtime.topics.interaction_events
    )
    return EventResponse(
        request_id=outcome.event.request_id,
        event_id=outcome.event.event_id,
        status=outcome.status,
        server_timestamp=outcome.event.server_timestamp,
    )


@router.post("/events/watch", summary="Track a watch (progress) event")
async def track_watch(event: WatchEvent, conn: Transaction, runtime: RuntimeDep) -> EventResponse:
    return await _ingest_one(EventType.WATCH, event, conn, runtime)


@router.post("/events/search", summary="Track a search event")
async def track_search(event: SearchEvent, conn: Transaction, runtime: RuntimeDep) -> EventResponse:
    return await _ingest_one(EventType.SEARCH, event, conn, runtime)


@router.post("/events/rating", summary="Track a rating event")
async def track_rating(event: RatingEvent, conn: Transaction, runtime: RuntimeDep) -> EventResponse:
    return await _ingest_one(EventType.RATING, event, conn, runtime)


@router.post("/events/favorite", summary="Track a favorite add/remove event")
async def track_favorite(
    event: FavoriteEvent, conn: Transaction, runtime: RuntimeDep
) -> EventResponse:
    return await _ingest_one(EventType.FAVORITE, event, conn, runtime)


@router.post(
    "/events/batch",
    summary="Track up to 1,000 events at once",
    response_model_exclude_none=True,
    description="Invalid items are rejected one by one; every valid item is committed in one "
    "transaction. A request id repeated inside the batch is a duplicate after its first use.",
)
async def track_batch(body: BatchRequest, conn: Transaction, runtime: RuntimeDep) -> BatchResponse:
    results: list[BatchItemResult | None] = [None] * len(body.events)
    valid: list[tuple[int, NewEvent]] = []
    for index, raw in enumerate(body.events):
        parsed = _parse_item(raw)
        if isinstance(parsed, NewEvent):
            valid.append((index, parsed))
        else:
            results[index] = BatchItemResult(
                index=index, request_id=_raw_request_id(raw), status="rejected", error=parsed
            )
    outcomes = await ingest(
        conn, [event for _, event in valid], topic=runtime.topics.interaction_events
    )
    for (index, _), outcome in zip(valid, outcomes, strict=True):
        results[index] = _item_result(index, outcome)
    final = [r for r in results if r is not None]
    return BatchResponse(
        results=final,
        accepted=sum(r.status == "accepted" for r in final),
        duplicates=sum(r.status == "duplicate" for r in final),
        rejected=sum(r.status == "rejected" for r in final),
    )


def _parse_item(raw: Any) -> NewEvent | str:
    """The item as a NewEvent, or a short reason it was rejected (values are never echoed)."""
    if not isinstance(raw, dict):
        return "each event must be a JSON object"
    type_name = raw.get("type")
    try:
        event_type = EventType(str(type_name).lower())
    except ValueError:
        return "type must be one of: watch, search, rating, favorite"
    try:
        event = MODEL_BY_TYPE[event_type].model_validate(raw)
    except ValidationError as exc:
        return "; ".join(f"{d['field']}: {d['message']}" for d in validation_details(exc.errors()))
    return NewEvent.from_wire(event_type, event)


def _raw_request_id(raw: Any) -> Any:
    if isinstance(raw, dict):
        try:
            return BatchItemResult.model_validate(
                {"index": 0, "status": "rejected", "requestId": raw.get("requestId")}
            ).request_id
        except ValidationError:
            return None
    return None


def _item_result(index: int, outcome: IngestOutcome) -> BatchItemResult:
    return BatchItemResult(
        index=index,
        request_id=outcome.event.request_id,
        status=outcome.status,
        event_id=outcome.event.event_id,
        server_timestamp=outcome.event.server_timestamp,
    )
