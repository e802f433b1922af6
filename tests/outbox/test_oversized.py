"""One size contract from ingest to the dead letters (issue 17, defect 1).

An event whose message could not be published must be refused at ingest, alone; an event at the
limit must still fit in a dead-letter envelope when a consumer fails on it; a row the broker
refuses anyway (stored by an older version, or a broker with a lower limit) is set aside, listed,
counted, and never blocks the rows behind it.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from sqlalchemy import select

from interaction_recommender import metrics
from interaction_recommender.bus.base import Message, MessageRejected
from interaction_recommender.bus.memory import MemoryBus
from interaction_recommender.deadletter.messages import ENVELOPE_ROOM, max_original_bytes
from interaction_recommender.features.consumer import processed_message
from interaction_recommender.features.state import DEFAULT_CONFIG, worst_case_features
from interaction_recommender.outbox.repository import OutboxMessage, OutboxRepository
from interaction_recommender.settings import Settings
from interaction_recommender.storage.tables import outbox
from tests.fixtures.app import Service, run_service
from tests.fixtures.bus import read_topic
from tests.fixtures.contract import assert_error_shape
from tests.fixtures.factories import event_payload, new_id
from tests.fixtures.serving import eventually

ADMIN = "admin-token-0123456789"
AUTH = {"Authorization": f"Bearer {ADMIN}"}
MAX_REQUEST_SIZE = 64 * 1024  # small, so that the limit is cheap to reach


@pytest.fixture
async def small_limit(settings: Settings) -> AsyncIterator[Service]:
    overrides = {"kafka_max_request_size": MAX_REQUEST_SIZE, "admin_token": ADMIN}
    async with run_service(settings.model_copy(update=overrides)) as service:
        yield service


def _search(user: str, padding: int) -> dict[str, Any]:
    """A search whose message grows by one byte per unit of ``padding`` (a filter key)."""
    return event_payload(
        "search", user_id=user, metadata={"query": "x", "filters": {"k" * padding: 1}}
    )


def test_the_limit_leaves_room_for_the_dead_letter_envelope() -> None:
    limit = max_original_bytes(MAX_REQUEST_SIZE)
    assert limit == (MAX_REQUEST_SIZE - ENVELOPE_ROOM) * 3 // 4
    assert 4 * -(-limit // 3) + ENVELOPE_ROOM <= MAX_REQUEST_SIZE  # base64 of the original fits


async def test_an_oversized_item_is_refused_alone_and_the_others_reach_the_topic(
    small_limit: Service,
) -> None:
    user = new_id()
    small, big = _search(user, 10), _search(user, MAX_REQUEST_SIZE)
    later = _search(user, 20)
    batch = await small_limit.client.post(
        "/api/v1/events/batch",
        json={"events": [small | {"type": "search"}, big | {"type": "search"}]},
    )
    single = await small_limit.client.post("/api/v1/events/search", json=big)
    after = await small_limit.client.post("/api/v1/events/search", json=later)

    assert batch.status_code == 200, batch.text
    results = batch.json()["results"]
    assert [r["status"] for r in results] == ["accepted", "rejected"]
    assert "bytes" in results[1]["error"]
    assert results[1]["requestId"] == big["requestId"]
    assert single.status_code == 413
    assert_error_shape(single.json(), "payload_too_large")
    assert after.status_code == 200
    topic = small_limit.runtime.topics.interaction_events
    wanted = {small["requestId"], later["requestId"]}
    messages = await read_topic(
        small_limit.runtime,
        topic,
        until=lambda ms: wanted <= {m["requestId"] for m in ms},
    )
    assert wanted <= {m["requestId"] for m in messages}
    assert big["requestId"] not in {m["requestId"] for m in messages}


async def test_an_item_at_the_limit_reaches_the_dead_letter_topic_through_a_failing_consumer(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    from interaction_recommender.features import consumer as consumer_module

    user = new_id()
    limit = max_original_bytes(MAX_REQUEST_SIZE)
    real_apply = consumer_module.apply_events

    def fails_for_the_user(features, events, config=None, **kw):  # type: ignore[no-untyped-def]
        if str(features.user_id) == user:
            raise RuntimeError("a consumer bug")
        return real_apply(features, events, config or consumer_module.DEFAULT_CONFIG, **kw)

    monkeypatch.setattr(consumer_module, "apply_events", fails_for_the_user)
    overrides = {
        "kafka_max_request_size": MAX_REQUEST_SIZE,
        "admin_token": ADMIN,
        "enable_consumers": True,
    }
    async with run_service(settings.model_copy(update=overrides)) as service:
        # The padding that makes the message exactly `limit` bytes, found with the same
        # function ingest uses: one more byte is refused, this one is accepted.
        ingest = service.runtime.ingest
        padding = limit - ingest.message_bound(probe_event(_search(user, 0)))
        at_limit = _search(user, padding)
        over = await service.client.post("/api/v1/events/search", json=_search(user, padding + 1))
        accepted = await service.client.post("/api/v1/events/search", json=at_limit)
        assert over.status_code == 413, over.text
        assert accepted.status_code == 200, accepted.text

        dlq_topic = service.runtime.topics.interaction_events_dlq
        letters = await read_topic(
            service.runtime, dlq_topic, until=lambda ms: any(m["userId"] == user for m in ms)
        )
        async with service.runtime.database.transaction() as conn:
            set_aside = (
                await conn.execute(select(outbox.c.id).where(outbox.c.set_aside_at.is_not(None)))
            ).all()

    letter = next(m for m in letters if m["userId"] == user)
    assert letter["original"]["encoding"] == "base64"
    original = orjson.loads(base64.b64decode(letter["original"]["value"]))
    assert original["requestId"] == at_limit["requestId"]
    assert len(base64.b64decode(letter["original"]["value"])) <= limit
    assert set_aside == []


def probe_event(body: dict[str, Any]) -> Any:
    from interaction_recommender.events.schemas import EventType, NewEvent, SearchEvent

    return NewEvent.from_wire(EventType.SEARCH, SearchEvent.model_validate(body))


async def test_a_row_the_bus_refuses_is_set_aside_listed_and_counted(
    small_limit: Service,
) -> None:
    runtime = small_limit.runtime
    user = new_id()
    topic = runtime.topics.interaction_events
    before = metrics.OUTBOX_SET_ASIDE._value.get()
    # As an older version stored it: a message over the producer's limit, between two others.
    async with runtime.database.transaction() as conn:
        await OutboxRepository(conn).add(
            [
                OutboxMessage(topic, user, orjson.dumps({"n": 1, "requestId": "first"})),
                OutboxMessage(topic, user, b'{"pad":"' + b"x" * MAX_REQUEST_SIZE + b'"}'),
                OutboxMessage(topic, user, orjson.dumps({"n": 3, "requestId": "third"})),
            ],
            datetime.now(UTC),
        )
    runtime.database.notify("outbox")
    messages = await read_topic(
        runtime, topic, until=lambda ms: {"first", "third"} <= {m.get("requestId") for m in ms}
    )
    assert [m.get("requestId") for m in messages if m.get("requestId") in {"first", "third"}] == [
        "first",
        "third",
    ]

    async def listed() -> bool:
        listing = await small_limit.client.get("/api/v1/admin/dlq", headers=AUTH)
        return bool(listing.json()["setAside"])

    await eventually(listed)
    listing = (await small_limit.client.get("/api/v1/admin/dlq", headers=AUTH)).json()
    health = (await small_limit.client.get("/api/v1/health")).json()

    (row,) = listing["setAside"]
    assert row["topic"] == topic
    assert row["key"] == user
    assert row["sizeBytes"] > MAX_REQUEST_SIZE
    assert "too large" in row["reason"]
    assert listing["setAsideCount"] == 1
    assert metrics.OUTBOX_SET_ASIDE._value.get() == before + 1
    assert health["components"]["outbox"]["status"] == "healthy"
    assert "setAside=1" in health["components"]["outbox"]["message"]
    async with runtime.database.transaction() as conn:
        backlog, _ = await OutboxRepository(conn).backlog()
    assert backlog == 0  # a set-aside row is not a backlog: nothing waits behind it


async def test_the_memory_bus_delivers_the_others_and_names_the_refused_one() -> None:
    bus = MemoryBus(max_request_size=1000)
    with pytest.raises(MessageRejected) as refused:
        await bus.publish(
            [Message("t", b"k", b"a"), Message("t", b"k", b"x" * 2000), Message("t", b"k", b"c")]
        )
    _, delivered = bus.read("t", 0)
    assert [m.value for m in delivered] == [b"a", b"c"]
    assert list(refused.value.rejected) == [1]


def test_the_heaviest_user_s_processed_features_fit_in_the_default_limit() -> None:
    default_limit = Settings().kafka_max_request_size
    heaviest = worst_case_features(uuid.uuid4(), DEFAULT_CONFIG)
    message = processed_message("processed_features", heaviest)
    assert message.value is not None
    assert len(message.value) > 100_000  # really the heaviest: every cap is full
    assert len(message.value) + len(message.key or b"") + 128 <= default_limit
