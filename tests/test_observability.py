"""Request ids, structured logs without personal data, Prometheus metrics."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from interaction_recommender.logs import configure_logging
from tests.fixtures.app import Service, embedded_settings, run_service
from tests.fixtures.factories import event_payload


@pytest.mark.parametrize("mode", ["embedded"], indirect=True)
async def test_request_id_is_echoed_or_made(service: Service) -> None:
    given = await service.client.get("/health/live", headers={"X-Request-ID": "abc-123"})
    made = await service.client.get("/health/live")
    hostile = await service.client.get("/health/live", headers={"X-Request-ID": "a\x7fb" * 100})

    assert given.headers["x-request-id"] == "abc-123"
    assert len(made.headers["x-request-id"]) == 36
    assert hostile.headers["x-request-id"] != "a\x7fb" * 100


async def test_access_log_is_json_with_request_id_and_no_search_query(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    body = event_payload("search", metadata={"query": "very private words"})
    headers = {
        "X-Request-ID": "req-42",
        "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
    }
    configure_logging("INFO", json=True)  # as `recommender serve` does
    try:
        async with run_service(embedded_settings(tmp_path, access_log=True)) as service:
            response = await service.client.post(
                "/api/v1/events/search", json=body, headers=headers
            )
        out = capsys.readouterr().out
    finally:
        logging.getLogger().handlers.clear()
    assert response.status_code == 200

    lines = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    access = [line for line in lines if line.get("event") == "request"]
    assert access, out
    assert access[-1]["request_id"] == "req-42"
    assert access[-1]["route"] == "/events/search"
    assert access[-1]["status"] == 200
    assert access[-1]["traceparent"].startswith("00-0af7")
    assert "very private words" not in out


@pytest.mark.parametrize("mode", ["embedded"], indirect=True)
async def test_metrics_count_requests_and_events(service: Service) -> None:
    await service.client.post("/api/v1/events/watch", json=event_payload())
    await service.client.post("/api/v1/events/watch", json={"userId": "nope"})

    text = (await service.client.get("/metrics")).text

    # The route label is the handler's template, the same with or without the /api/v1 prefix.
    assert 'http_requests_total{method="POST",route="/events/watch",status="200"}' in text
    assert 'http_requests_total{method="POST",route="/events/watch",status="422"}' in text
    assert 'ingested_events_total{status="accepted",type="watch"}' in text
    assert "outbox_backlog" in text
    assert "outbox_oldest_age_seconds" in text
