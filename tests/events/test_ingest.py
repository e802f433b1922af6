"""Durable, idempotent ingestion, in the embedded mode and against Postgres + Kafka."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from sqlalchemy import func, select

from interaction_recommender.storage.tables import outbox, raw_events
from tests.fixtures.app import Service
from tests.fixtures.bus import read_topic
from tests.fixtures.contract import assert_error_shape, assert_event_response, assert_uuid
from tests.fixtures.factories import event_payload, new_id

EVENT_TYPES = ["watch", "search", "rating", "favorite"]


async def _count_rows(service: Service, request_id: str) -> int:
    async with service.runtime.database.transaction() as conn:
        result = await conn.execute(
            select(func.count()).where(raw_events.c.request_id == uuid.UUID(request_id))
        )
        return int(result.scalar_one())


@pytest.mark.parametrize("event_type", EVENT_TYPES)
async def test_each_event_type_is_stored_published_and_answered(
    service: Service, event_type: str
) -> None:
    body = event_payload(event_type)
    response = await service.client.post(f"/api/v1/events/{event_type}", json=body)

    assert response.status_code == 200, response.text
    answer = response.json()
    assert_event_response(answer)
    assert answer["status"] == "accepted"
    assert answer["requestId"] == body["requestId"]
    assert await _count_rows(service, body["requestId"]) == 1

    topic = service.runtime.topics.interaction_events
    messages = await read_topic(
        service.runtime, topic, until=lambda ms: any(m["eventId"] == answer["eventId"] for m in ms)
    )
    (message,) = [m for m in messages if m["eventId"] == answer["eventId"]]
    assert message["schemaVersion"] == 1
    assert message["eventType"] == event_type
    assert message["userId"] == body["userId"]
    assert message["movieId"] == body["movieId"]
    assert message["requestId"] == body["requestId"]
    assert isinstance(message["sequence"], int)
    assert message["serverTimestamp"] == answer["serverTimestamp"]


async def test_unprefixed_route_is_the_same_handler(service: Service) -> None:
    body = event_payload("watch")
    first = await service.client.post("/events/watch", json=body)
    again = await service.client.post("/api/v1/events/watch", json=body)

    assert first.json()["status"] == "accepted"
    assert again.json()["status"] == "duplicate"
    assert again.json()["eventId"] == first.json()["eventId"]


async def test_a_minimal_watch_event_without_request_id_gets_one(service: Service) -> None:
    # A caller's minimal watch event: no requestId, no sessionId, no progressPercent.
    body = {
        "userId": "550e8400-e29b-41d4-a716-446655440000",
        "movieId": "550e8400-e29b-41d4-a716-446655440001",
        "clientTimestamp": "2025-01-01T12:00:00Z",
        "metadata": {"watchDuration": 3600, "device": "web", "quality": "1080p"},
    }
    response = await service.client.post("/events/watch", json=body)

    assert response.status_code == 200
    assert_event_response(response.json())
    assert response.json()["status"] == "accepted"


async def test_nanosecond_timestamp_with_offset_is_accepted(service: Service) -> None:
    body = event_payload("rating")
    body["clientTimestamp"] = "2025-03-04T05:06:07.123456789+02:00"
    response = await service.client.post("/api/v1/events/rating", json=body)

    assert response.status_code == 200
    async with service.runtime.database.transaction() as conn:
        stored = (
            await conn.execute(
                select(raw_events.c.client_timestamp).where(
                    raw_events.c.request_id == uuid.UUID(body["requestId"])
                )
            )
        ).scalar_one()
    assert stored.isoformat() == "2025-03-04T03:06:07.123456+00:00"


async def test_sequential_retries_store_one_event(service: Service) -> None:
    body = event_payload("watch")
    answers = [
        (await service.client.post("/api/v1/events/watch", json=body)).json() for _ in range(3)
    ]

    assert [a["status"] for a in answers] == ["accepted", "duplicate", "duplicate"]
    assert len({a["eventId"] for a in answers}) == 1
    assert len({a["serverTimestamp"] for a in answers}) == 1
    assert await _count_rows(service, body["requestId"]) == 1


async def test_twenty_concurrent_retries_store_one_event(service: Service) -> None:
    body = event_payload("favorite")
    responses = await asyncio.gather(
        *(service.client.post("/api/v1/events/favorite", json=body) for _ in range(20))
    )

    assert all(r.status_code == 200 for r in responses), [r.text for r in responses]
    statuses = sorted(r.json()["status"] for r in responses)
    assert statuses == ["accepted"] + ["duplicate"] * 19
    assert len({r.json()["eventId"] for r in responses}) == 1
    assert await _count_rows(service, body["requestId"]) == 1
    # One message for the event on the events topic (the embedded mode's placeholder consumer
    # may add a catalog message for the unknown movie meanwhile: another topic).
    events_topic = service.runtime.topics.interaction_events
    async with service.runtime.database.transaction() as conn:
        outbox_rows = (
            await conn.execute(
                select(func.count()).select_from(outbox).where(outbox.c.topic == events_topic)
            )
        ).scalar_one()
    assert outbox_rows == 1


async def test_batch_rejects_invalid_items_one_by_one(service: Service) -> None:
    good = event_payload("watch", with_type=True)
    repeated = {**event_payload("rating", with_type=True), "requestId": good["requestId"]}
    bad_uuid = {**event_payload("rating", with_type=True), "userId": "not-a-uuid"}
    unknown_type = {**event_payload("watch"), "type": "purchase"}
    upper_case = event_payload("search", with_type=True) | {"type": "SEARCH"}
    events: list[Any] = [good, bad_uuid, repeated, "not an object", unknown_type, upper_case]

    response = await service.client.post("/api/v1/events/batch", json={"events": events})

    assert response.status_code == 200, response.text
    answer = response.json()
    statuses = [r["status"] for r in answer["results"]]
    assert statuses == ["accepted", "rejected", "duplicate", "rejected", "rejected", "accepted"]
    assert [r["index"] for r in answer["results"]] == list(range(6))
    assert (answer["accepted"], answer["duplicates"], answer["rejected"]) == (2, 1, 3)
    assert answer["results"][2]["eventId"] == answer["results"][0]["eventId"]
    assert "userId" in answer["results"][1]["error"]
    assert "not-a-uuid" not in answer["results"][1]["error"]  # values are never echoed
    for result in answer["results"]:
        if result["status"] != "rejected":
            assert_uuid(result["eventId"])


async def test_batch_duplicates_of_stored_events(service: Service) -> None:
    first = event_payload("watch", with_type=True)
    await service.client.post("/api/v1/events/batch", json={"events": [first]})
    second = event_payload("favorite", with_type=True)

    response = await service.client.post("/events/batch", json={"events": [first, second]})

    assert [r["status"] for r in response.json()["results"]] == ["duplicate", "accepted"]


async def test_batch_of_1000_is_committed_and_1001_is_refused(service: Service) -> None:
    user = new_id()
    events = [event_payload("watch", user_id=user, with_type=True) for _ in range(1000)]
    response = await service.client.post("/api/v1/events/batch", json={"events": events})
    assert response.status_code == 200
    assert response.json()["accepted"] == 1000

    too_many = [*events, event_payload("watch", with_type=True)]
    refused = await service.client.post("/api/v1/events/batch", json={"events": too_many})
    assert refused.status_code == 422
    assert_error_shape(refused.json())


async def test_per_user_sequence_follows_commit_order_on_the_topic(service: Service) -> None:
    """Concurrent single events and batches for one user: the topic holds that user's events in
    strictly increasing sequence order, each exactly once (no redelivery in a healthy run)."""
    user = new_id()

    async def single() -> None:
        r = await service.client.post("/api/v1/events/watch", json=event_payload(user_id=user))
        assert r.status_code == 200

    async def batch() -> None:
        events = [event_payload("watch", user_id=user, with_type=True) for _ in range(25)]
        r = await service.client.post("/api/v1/events/batch", json={"events": events})
        assert r.status_code == 200

    await asyncio.gather(*(single() for _ in range(40)), *(batch() for _ in range(4)))

    topic = service.runtime.topics.interaction_events
    messages = await read_topic(
        service.runtime,
        topic,
        until=lambda ms: sum(m["userId"] == user for m in ms) >= 140,
    )
    sequences = [m["sequence"] for m in messages if m["userId"] == user]
    assert len(sequences) == 140
    assert sequences == sorted(sequences)
    assert len(set(sequences)) == 140


async def test_batch_with_nothing_valid_stores_nothing(service: Service) -> None:
    empty = await service.client.post("/api/v1/events/batch", json={"events": []})
    all_bad = await service.client.post("/api/v1/events/batch", json={"events": [1, {"x": 2}]})

    assert empty.status_code == 200
    assert empty.json() == {"results": [], "accepted": 0, "duplicates": 0, "rejected": 0}
    assert all_bad.status_code == 200
    assert all_bad.json()["rejected"] == 2
