"""Foreign and malformed messages on `interaction_events` (issue 17, defect 5): undecodable input
changes no state and is dead-lettered with its consumer group named; a message one consumer keeps
failing on is isolated from its batch; a replay reaches only the group that failed."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest

from interaction_recommender.bus.base import Message
from interaction_recommender.features.repository import SnapshotRepository
from interaction_recommender.settings import Settings
from tests.fixtures.app import Service, run_service
from tests.fixtures.factories import event_payload, new_id
from tests.fixtures.serving import eventually

ADMIN = "admin-token-0123456789"
AUTH = {"Authorization": f"Bearer {ADMIN}"}


@pytest.fixture
async def consuming(settings: Settings) -> AsyncIterator[Service]:
    configured = settings.model_copy(update={"enable_consumers": True, "admin_token": ADMIN})
    async with run_service(configured) as service:
        yield service


async def _publish(service: Service, user: str, body: dict[str, Any]) -> None:
    topic = service.runtime.topics.interaction_events
    await service.runtime.bus.publish([Message(topic, user.encode(), orjson.dumps(body))])


async def _interactions(service: Service, user: str, count: int) -> None:
    async def applied() -> bool:
        response = await service.client.get(f"/api/v1/features/{user}")
        if response.status_code != 200:
            return False
        return bool(response.json()["features"]["totalInteractions"] == count)

    await eventually(applied, timeout=20)


async def _letters(service: Service) -> list[dict[str, Any]]:
    listing = await service.client.get("/api/v1/admin/dlq", headers=AUTH)
    letters: list[dict[str, Any]] = listing.json()["deadLetters"]
    return letters


def _consumer(service: Service, name: str) -> Any:
    return next(c for c in service.runtime.consumers if c.name == name)


async def test_a_forged_sequence_changes_nothing(consuming: Service) -> None:
    user = new_id()
    await _publish(consuming, user, {"schemaVersion": 9, "userId": user, "sequence": 9 * 10**18})
    response = await consuming.client.post(
        "/api/v1/events/watch", json=event_payload("watch", user_id=user)
    )
    assert response.status_code == 200

    await _interactions(consuming, user, 1)  # the real event is not taken for a repeat
    async with consuming.runtime.database.transaction() as conn:
        stored = (await SnapshotRepository(conn).load_many([uuid.UUID(user)]))[uuid.UUID(user)]
    letters = [d for d in await _letters(consuming) if d["userId"] == user]

    assert stored.watermark < 9 * 10**18
    assert stored.dead_lettered == set()
    assert [d["consumer"] for d in letters] == [consuming.settings.features_consumer_group]


async def test_a_naive_timestamp_is_dead_lettered_and_stalls_no_consumer(
    consuming: Service,
) -> None:
    user, movie = new_id(), new_id()
    naive = {
        "schemaVersion": 1,
        "eventId": new_id(),
        "sequence": 1,
        "requestId": new_id(),
        "eventType": "rating",
        "userId": user,
        "movieId": movie,
        "clientTimestamp": "2026-12-08T10:00:00",
        "serverTimestamp": "2026-12-08T10:00:00",
        "metadata": {"rating": 4.0},
    }
    await _publish(consuming, user, naive)
    later = await consuming.client.post(
        "/api/v1/events/rating", json=event_payload("rating", user_id=user)
    )
    assert later.status_code == 200

    await _interactions(consuming, user, 1)
    attribution = _consumer(consuming, "feedback-attribution")

    async def attribution_moved_on() -> bool:
        return bool(attribution.state.processed >= 2 and not attribution.state.consecutive_failures)

    await eventually(attribution_moved_on, timeout=20)
    letters = [d for d in await _letters(consuming) if d["userId"] == user]
    assert [d["errorType"] for d in letters] == ["ValidationError"]


async def test_a_record_one_consumer_keeps_failing_on_is_isolated_and_replayed_to_it_alone(
    consuming: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    from interaction_recommender.catalog import placeholders

    bad_movie = new_id()
    real_create = placeholders.create_placeholders

    async def fails_for_one_movie(conn, movie_ids, **kw):  # type: ignore[no-untyped-def]
        if uuid.UUID(bad_movie) in set(movie_ids):
            raise RuntimeError("a placeholder bug")
        return await real_create(conn, movie_ids, **kw)

    monkeypatch.setattr(placeholders, "create_placeholders", fails_for_one_movie)
    user = new_id()
    good_movie = new_id()
    for movie in (bad_movie, good_movie):
        body = event_payload("watch", user_id=user, movie_id=movie)
        assert (await consuming.client.post("/api/v1/events/watch", json=body)).is_success

    catalog_group = consuming.settings.catalog_consumer_group

    async def isolated() -> bool:
        letters = [d for d in await _letters(consuming) if d["consumer"] == catalog_group]
        return bool(letters) and uuid.UUID(good_movie) in consuming.runtime.catalog

    await eventually(isolated, timeout=60)
    await _interactions(consuming, user, 2)  # the feature consumer never saw a problem
    (letter,) = [d for d in await _letters(consuming) if d["consumer"] == catalog_group]
    assert letter["errorType"] == "RuntimeError"
    assert letter["userId"] == user

    features = _consumer(consuming, "features")
    catalog = _consumer(consuming, "catalog-placeholders")
    features_before, catalog_before = features.state.processed, catalog.state.processed
    monkeypatch.setattr(placeholders, "create_placeholders", real_create)  # fixed
    replay = await consuming.client.post(
        "/api/v1/admin/dlq/replay", json={"ids": [letter["deadLetterId"]]}, headers=AUTH
    )
    assert replay.json() == {"replayed": [letter["deadLetterId"]]}

    async def placeholder_created() -> bool:
        return uuid.UUID(bad_movie) in consuming.runtime.catalog

    await eventually(placeholder_created, timeout=30)
    assert catalog.state.processed == catalog_before + 1
    assert features.state.processed == features_before  # the replay reached the catalog only
