"""Erasure as a durable job that stays erased (issue 17, defect 2).

DELETE /users/{id} answers 202 with an erasure id; GET /users/{id}/erasure follows it; every store
has its step, retried until done; the audit record names no user; whatever arrives for the user
afterwards is answered as before (200 accepted) and never stored.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import func, select

from interaction_recommender import metrics
from interaction_recommender.settings import Settings
from interaction_recommender.storage.tables import (
    erasures,
    feedback,
    impressions,
    outbox,
    raw_events,
    user_features,
)
from tests.fixtures.app import Service, backend_settings, run_service
from tests.fixtures.factories import event_payload, new_id
from tests.fixtures.serving import eventually

ADMIN = "admin-token-0123456789"
AUTH = {"Authorization": f"Bearer {ADMIN}"}
NOW = "2026-12-08T12:00:00Z"


@pytest.fixture
async def service(settings: Settings) -> AsyncIterator[Service]:
    configured = settings.model_copy(
        update={"admin_token": ADMIN, "enable_consumers": True, "erasure_sweep_after_s": 0.5}
    )
    async with run_service(configured) as running:
        yield running


async def _post(service: Service, path: str, body: dict[str, Any]) -> dict[str, Any]:
    response = await service.client.post(path, json=body)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


async def _rows(service: Service, user: str) -> dict[str, int]:
    """Rows that name the user, per table (the outbox: every message keyed by the user but
    the processed_features tombstones)."""
    user_id = uuid.UUID(user)
    counts: dict[str, int] = {}
    async with service.runtime.database.transaction() as conn:
        for table in (raw_events, user_features, impressions, feedback):
            query = select(func.count()).select_from(table).where(table.c.user_id == user_id)
            counts[table.name] = int((await conn.execute(query)).scalar_one())
        messages = select(func.count()).where(
            outbox.c.message_key == user, outbox.c.payload.is_not(None)
        )
        counts["outbox"] = int((await conn.execute(messages)).scalar_one())
    return counts


async def _erase_and_wait(service: Service, user: str) -> dict[str, Any]:
    answer = await service.client.delete(f"/api/v1/users/{user}", headers=AUTH)
    assert answer.status_code == 202, answer.text
    erasure_id = answer.json()["erasureId"]
    status: dict[str, Any] = {}

    async def done() -> bool:
        nonlocal status
        response = await service.client.get(f"/api/v1/users/{user}/erasure", headers=AUTH)
        assert response.status_code == 200, response.text
        status = response.json()
        return bool(status["status"] == "done")

    await eventually(done, timeout=60)  # the issue: done within a minute when every store is up
    assert status["erasureId"] == erasure_id
    return status


async def test_erasure_is_a_job_with_steps_and_an_audit_record_without_the_user(
    service: Service,
) -> None:
    user, movie = new_id(), new_id()
    await _post(
        service, "/api/v1/events/watch", event_payload("watch", user_id=user, movie_id=movie)
    )
    before = await _rows(service, user)
    await service.runtime.relay.publish_once()  # some of the user's outbox rows are sent

    status = await _erase_and_wait(service, user)
    unknown = await service.client.get(f"/api/v1/users/{new_id()}/erasure", headers=AUTH)
    anonymous = await service.client.get(f"/api/v1/users/{user}/erasure")

    assert before["raw_events"] == 1
    assert {s["name"] for s in status["steps"]} >= {"database", "online_features", "caches"}
    assert all(s["status"] == "done" for s in status["steps"])
    assert status["completedAt"] >= status["requestedAt"]
    assert await _rows(service, user) == dict.fromkeys(before, 0)  # sent outbox rows included
    assert unknown.status_code == 404
    assert anonymous.status_code == 401
    async with service.runtime.database.transaction() as conn:
        audit = [dict(r) for r in (await conn.execute(select(erasures))).mappings()]
    assert len(audit) == 1
    assert user not in str(audit) and uuid.UUID(user).hex not in str(audit)


async def test_after_erasure_events_feedback_and_impressions_are_accepted_never_stored(
    service: Service,
) -> None:
    user, movie = new_id(), new_id()
    first = event_payload("rating", user_id=user, movie_id=movie)
    await _post(service, "/api/v1/events/rating", first)
    await _erase_and_wait(service, user)
    dropped = metrics.ERASED_USER_WRITES_DROPPED.labels("event")._value.get()

    again = await _post(service, "/api/v1/events/rating", first)  # the same requestId
    fresh = await _post(service, "/api/v1/events/watch", event_payload("watch", user_id=user))
    batch = await _post(
        service,
        "/api/v1/events/batch",
        {"events": [event_payload("favorite", user_id=user, with_type=True)]},
    )
    shown = await service.client.get(f"/api/v1/recommend/{user}?k=5&context=home")
    body = {"userId": user, "recommendationId": shown.json()["recommendationId"], "timestamp": NOW}
    fed = await _post(service, "/api/v1/feedback", body)
    if service.runtime.impressions is not None:
        await service.runtime.impressions.flush()

    assert again["status"] == fresh["status"] == "accepted"
    assert batch["accepted"] == 1
    assert shown.status_code == 200
    assert fed  # answered as usual
    assert await _rows(service, user) == {
        "raw_events": 0,
        "user_features": 0,
        "impressions": 0,
        "feedback": 0,
        "outbox": 0,
    }
    assert metrics.ERASED_USER_WRITES_DROPPED.labels("event")._value.get() == dropped + 3
    assert metrics.ERASED_USER_WRITES_DROPPED.labels("feedback")._value.get() >= 1


async def test_a_failing_store_keeps_the_job_pending_until_it_answers(
    service: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    user = new_id()
    await _post(service, "/api/v1/events/watch", event_payload("watch", user_id=user))
    store = service.runtime.feature_store
    real_erase = store.erase
    failures = 0

    async def redis_down(user_id: uuid.UUID) -> None:
        nonlocal failures
        failures += 1
        raise ConnectionError("redis is down")

    monkeypatch.setattr(store, "erase", redis_down)
    answer = await service.client.delete(f"/api/v1/users/{user}", headers=AUTH)
    assert answer.status_code == 202, answer.text

    pending: dict[str, Any] = {}

    async def retried() -> bool:  # the job says so once the second attempt is recorded
        nonlocal pending
        response = await service.client.get(f"/api/v1/users/{user}/erasure", headers=AUTH)
        pending = response.json()
        return failures >= 2 and _step(pending, "online_features")["attempts"] >= 2

    await eventually(retried, timeout=30)
    step = _step(pending, "online_features")
    assert pending["status"] == "pending"
    assert step["status"] == "pending"
    assert "ConnectionError" in step["lastError"]

    monkeypatch.setattr(store, "erase", real_erase)  # the store is back
    await _erase_and_wait_for_existing(service, user)
    assert uuid.UUID(user) not in await store.get_many([uuid.UUID(user)])


def _step(status: dict[str, Any], name: str) -> dict[str, Any]:
    found: dict[str, Any] = next(s for s in status["steps"] if s["name"] == name)
    return found


async def _erase_and_wait_for_existing(service: Service, user: str) -> None:
    async def done() -> bool:
        response = await service.client.get(f"/api/v1/users/{user}/erasure", headers=AUTH)
        return bool(response.json()["status"] == "done")

    await eventually(done, timeout=60)


@pytest.mark.parametrize("backend", ["postgres"])
async def test_an_ingest_racing_the_erasure_leaves_nothing(
    tmp_path: Any, pg_schema: str, backend: str
) -> None:
    settings = backend_settings(
        tmp_path,
        backend,
        pg_schema,
        admin_token=ADMIN,
        erasure_sweep_after_s=0.5,
        auto_migrate=True,
    )
    async with run_service(settings) as service:
        user = new_id()
        stop = asyncio.Event()
        answered: list[int] = []

        async def ingest() -> None:
            while not stop.is_set():
                response = await service.client.post(
                    "/api/v1/events/watch", json=event_payload("watch", user_id=user)
                )
                answered.append(response.status_code)

        writers = [asyncio.create_task(ingest()) for _ in range(8)]
        await asyncio.sleep(0.3)
        await _erase_and_wait(service, user)
        await asyncio.sleep(0.3)  # writes keep coming after the erasure
        stop.set()
        await asyncio.gather(*writers)
        rows = await _rows(service, user)

    assert len(answered) > 20
    assert set(answered) == {200}
    assert rows == {
        "raw_events": 0,
        "user_features": 0,
        "impressions": 0,
        "feedback": 0,
        "outbox": 0,
    }
