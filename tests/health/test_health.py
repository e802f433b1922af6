"""Health tells the truth: object components, real probes, 503 only when events can't be taken."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from interaction_recommender.storage import migrate
from interaction_recommender.storage.database import Database
from tests.fixtures.app import Service, embedded_settings, platform_settings, run_service
from tests.fixtures.bus import read_topic
from tests.fixtures.contract import (
    assert_error_shape,
    assert_event_response,
    assert_health_response,
)
from tests.fixtures.factories import event_payload
from tests.fixtures.services import KafkaBroker, free_port

HEALTH_PATHS = ["/health", "/api/v1/health"]


@pytest.mark.parametrize("path", HEALTH_PATHS)
async def test_health_reports_every_component_as_an_object(service: Service, path: str) -> None:
    response = await service.client.get(path)

    assert response.status_code == 200
    body = response.json()
    assert_health_response(body)
    assert body["status"] == "healthy", body
    components = body["components"]
    assert set(components) >= {"database", "redis", "kafka", "outbox", "model", "consumers"}
    assert components["database"]["status"] == "healthy"
    assert components["outbox"]["status"] == "healthy"
    assert "backlog=" in components["outbox"]["message"]
    if service.settings.embedded_database:
        assert components["redis"]["status"] == "disabled"
        assert components["kafka"]["status"] == "disabled"
        # The in-process bus always has its consumers in this process.
        assert components["consumers"]["status"] == "healthy"
        assert "catalog-placeholders" in components["consumers"]["message"]
    else:
        assert components["redis"]["status"] == "healthy"
        assert components["kafka"]["status"] == "healthy"


@pytest.mark.parametrize("path", ["/health/live", "/health/ready", "/api/v1/health/ready"])
async def test_probes_answer_ok(service: Service, path: str) -> None:
    response = await service.client.get(path)

    assert response.status_code == 200
    assert_health_response(response.json())


async def test_unreachable_database_is_unhealthy_and_events_get_a_quick_503(
    tmp_path: Path,
) -> None:
    closed = free_port()
    settings = embedded_settings(
        tmp_path,
        database_url=f"postgresql+asyncpg://nobody@127.0.0.1:{closed}/none",
        auto_migrate=False,
    )
    async with run_service(settings) as service:
        health = await service.client.get("/health")
        assert health.status_code == 503
        assert health.json()["status"] == "unhealthy"
        assert health.json()["components"]["database"]["status"] == "unhealthy"
        assert (await service.client.get("/health/ready")).status_code == 503

        started = time.monotonic()
        response = await service.client.post("/api/v1/events/watch", json=event_payload())
        elapsed = time.monotonic() - started

    assert response.status_code == 503
    assert response.headers["retry-after"].isdigit()
    assert_error_shape(response.json())
    assert elapsed < 8, f"a 503 must come well before the caller's 10 s timeout ({elapsed:.1f}s)"


async def test_not_ready_until_migrations_are_applied(
    tmp_path: Path, pg_schema: str, redis_url: str, kafka_broker: KafkaBroker
) -> None:
    settings = platform_settings(
        tmp_path, pg_schema, redis_url, kafka_broker, auto_migrate=False, health_probe_timeout_s=5
    )
    async with run_service(settings) as service:
        before = await service.client.get("/health/ready")
        database = Database(settings)
        try:
            await migrate(database)
        finally:
            await database.dispose()
        after = await service.client.get("/health/ready")

    assert before.status_code == 503
    assert "schema" in before.json()["components"]["database"]["message"]
    assert after.status_code == 200


async def test_broker_outage_loses_nothing_and_is_reported(
    tmp_path: Path, pg_schema: str, redis_url: str, kafka_broker: KafkaBroker
) -> None:
    settings = platform_settings(
        tmp_path, pg_schema, redis_url, kafka_broker, kafka_request_timeout_ms=1000
    )
    async with run_service(settings) as service:
        with kafka_broker.paused():
            answers = []
            for _ in range(30):
                response = await service.client.post("/api/v1/events/watch", json=event_payload())
                assert response.status_code == 200
                assert_event_response(response.json())
                answers.append(response.json())
            health = await _wait_for_health(service, lambda b: b["status"] == "degraded")
            assert health["components"]["kafka"]["status"] == "degraded"
            assert health["components"]["database"]["status"] == "healthy"

        wanted = {a["eventId"] for a in answers}
        messages = await read_topic(
            service.runtime,
            service.runtime.topics.interaction_events,
            until=lambda ms: wanted <= {m["eventId"] for m in ms},
            timeout=45,
        )
        assert wanted <= {m["eventId"] for m in messages}
        recovered = await _wait_for_health(service, lambda b: b["status"] == "healthy")
        assert recovered["components"]["kafka"]["status"] == "healthy"


async def _wait_for_health(
    service: Service, condition: Callable[[dict[str, Any]], bool], timeout: float = 30
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        body: dict[str, Any] = (await service.client.get("/health")).json()
        if condition(body) or time.monotonic() > deadline:
            return body
        await asyncio.sleep(0.3)


async def test_exhausted_pool_answers_503_quickly(
    tmp_path: Path, pg_schema: str, redis_url: str, kafka_broker: KafkaBroker
) -> None:
    settings = platform_settings(
        tmp_path,
        pg_schema,
        redis_url,
        kafka_broker,
        db_pool_size=1,
        db_max_overflow=0,
        db_pool_timeout_s=0.5,
    )
    async with run_service(settings) as service:
        pool = await service.runtime.database.driver_pool()  # the ingest path's pool
        async with pool.acquire():  # hold its only connection
            started = time.monotonic()
            response = await service.client.post("/api/v1/events/watch", json=event_payload())
            elapsed = time.monotonic() - started

    assert response.status_code == 503
    assert "retry-after" in response.headers
    assert_error_shape(response.json())
    assert elapsed < 5


async def test_a_failing_consumer_degrades_the_service(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from interaction_recommender.catalog.placeholders import PlaceholderCreator

    async def broken(self: PlaceholderCreator, records: list[object]) -> None:
        raise RuntimeError("injected fault")

    monkeypatch.setattr(PlaceholderCreator, "handle", broken)
    async with run_service(embedded_settings(tmp_path)) as service:
        await service.client.post("/api/v1/events/watch", json=event_payload())
        body = await _wait_for_health(
            service, lambda b: b["components"]["consumers"]["status"] == "degraded", timeout=15
        )

    assert body["status"] == "degraded"
    assert body["components"]["consumers"]["status"] == "degraded"
    assert "injected fault" in body["components"]["consumers"]["message"]


async def test_no_model_yet_is_healthy_the_fallback_is_the_designed_answer(tmp_path: Path) -> None:
    """Before any training the service answers from the popularity fallback, as designed: the
    `model` component is healthy and says so (issue 17: the Java callers read anything but
    healthy as down)."""
    async with run_service(embedded_settings(tmp_path)) as service:
        body = (await service.client.get("/health")).json()

    model = body["components"]["model"]
    assert model["status"] == "healthy"
    assert "popularity fallback" in model["message"]
    assert body["status"] == "healthy"
