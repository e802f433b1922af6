"""SIGTERM under load: in-flight requests finish, no 5xx, the relay flushes, the process exits 0."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import asyncpg
import httpx
import pytest

from tests.fixtures.bus import _read_kafka
from tests.fixtures.factories import event_payload
from tests.fixtures.server import ServerProcess, platform_env, server_port
from tests.fixtures.services import KafkaBroker, pg_base_url

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]


async def test_sigterm_finishes_requests_and_flushes_the_outbox(
    pg_schema: str, kafka_broker: KafkaBroker, redis_url: str, tmp_path: Path
) -> None:
    server = ServerProcess(
        server_port(),
        platform_env(pg_schema, kafka_broker, redis_url, tmp_path),
        tmp_path / "server.log",
    )
    answered: dict[str, str] = {}
    statuses: list[int] = []
    terminated = asyncio.Event()
    under_load = asyncio.Event()

    async def sender(client: httpx.AsyncClient) -> None:
        while True:  # until the stopped server refuses
            try:
                response = await client.post("/api/v1/events/watch", json=event_payload())
            except httpx.TransportError:
                if terminated.is_set():
                    return  # the server stopped taking connections, as it should
                raise
            statuses.append(response.status_code)
            if response.status_code == 200:
                answered[response.json()["eventId"]] = response.json()["requestId"]
                if len(answered) >= 100:
                    under_load.set()

    try:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as client:
            server.start()
            await server.wait_ready(client)
            senders = [asyncio.create_task(sender(client)) for _ in range(8)]
            await asyncio.wait_for(under_load.wait(), 30)
            terminated.set()
            await server.stop()  # SIGTERM; below: it exited by itself, after a clean shutdown
            await asyncio.gather(*senders)
        exit_code = server.exit_code
    finally:
        await server.stop()

    # uvicorn re-raises the signal after its graceful shutdown, so "killed by SIGTERM" is normal.
    assert exit_code in (0, -signal.SIGTERM), server.log_tail()
    assert "Application shutdown complete" in server.log_tail()
    assert all(status == 200 for status in statuses), sorted(set(statuses))

    conn = await asyncpg.connect(pg_base_url().replace("+asyncpg", ""))
    try:
        unsent = await conn.fetchval(
            f"SELECT count(*) FROM {pg_schema}.outbox WHERE sent_at IS NULL"
        )
        stored = await conn.fetchval(f"SELECT count(*) FROM {pg_schema}.raw_events")
    finally:
        await conn.close()
    assert unsent == 0, "the relay must flush the outbox before the process exits"
    assert stored >= len(answered)
    published = {
        m["eventId"]
        for m in await _read_kafka(kafka_broker.bootstrap, f"{pg_schema}.interaction_events")
    }
    assert set(answered) <= published
