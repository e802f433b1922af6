"""The impression log when the database fails: nothing lost while it can be kept, a bounded
buffer when it cannot, every answer on time, and the rest written at shutdown."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import func, select

from interaction_recommender.feedback.repository import ImpressionRepository
from interaction_recommender.storage.tables import impressions
from tests.fixtures.app import Service, embedded_settings, run_service
from tests.fixtures.factories import new_id
from tests.fixtures.serving import eventually


async def _stored(service: Service) -> int:
    async with service.runtime.database.transaction() as conn:
        return int((await conn.execute(select(func.count()).select_from(impressions))).scalar_one())


async def _recommend(service: Service, times: int) -> None:
    for _ in range(times):
        response = await service.client.get(f"/api/v1/recommend/{new_id()}?k=3")
        assert response.status_code == 200


def _dropped() -> float:
    return REGISTRY.get_sample_value("impressions_dropped_total") or 0.0


async def test_a_failing_database_keeps_then_bounds_then_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = embedded_settings(
        tmp_path, impression_flush_s=0.05, impression_buffer=100, impression_batch=10
    )
    down = True
    real_add = ImpressionRepository.add

    async def flaky_add(self: ImpressionRepository, rows: Any) -> None:
        if down:
            raise OSError("database unreachable (injected)")
        await real_add(self, rows)

    monkeypatch.setattr(ImpressionRepository, "add", flaky_add)
    async with run_service(settings) as service:
        log = service.runtime.impressions
        assert log is not None
        dropped_before = _dropped()
        await _recommend(service, 30)
        await asyncio.sleep(0.3)  # several failed write rounds
        assert (log.pending, await _stored(service)) == (30, 0)  # kept while failing

        await _recommend(service, 100)  # every answer still 200, at once
        assert log.pending == 100  # the bound
        assert _dropped() - dropped_before == 30

        down = False

        async def written() -> bool:
            return log.pending == 0 and await _stored(service) == 100

        await eventually(written, timeout=40)  # after the backoff (at most 30 s)


async def test_shutdown_writes_what_is_left(tmp_path: Path) -> None:
    settings = embedded_settings(tmp_path, impression_flush_s=60)  # no timed flush in the test
    async with run_service(settings) as service:
        await _recommend(service, 7)
        assert service.runtime.impressions is not None
        assert service.runtime.impressions.pending == 7
    async with run_service(settings) as service:
        assert await _stored(service) == 7


async def test_logging_off_logs_nothing(tmp_path: Path) -> None:
    settings = embedded_settings(tmp_path, impression_logging=False)
    async with run_service(settings) as service:
        await _recommend(service, 3)
        assert service.runtime.impressions is None
        assert await _stored(service) == 0
