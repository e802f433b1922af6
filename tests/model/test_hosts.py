"""Two `recommender serve` processes as two hosts would run them: separate working directories
(no shared disk, no MODEL_SIGNING_KEYS: the key `migrate` stored in the database), one database.
A training on a third "host" and a rollback through one of them reach both."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import httpx
import orjson
import pytest

from tests.fixtures.cli import Finished, succeeded
from tests.fixtures.server import ServerProcess, server_port
from tests.fixtures.services import pg_base_url

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

POLL_S = 0.5


def _host_env(tmp_path: Path, host: str, schema: str) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("MODEL_SIGNING_KEYS", "MODEL_PATH", "DATA_DIR")
    }
    return {
        **env,
        "DATABASE_URL": pg_base_url(),
        "DATABASE_SCHEMA": schema,
        "AUTO_MIGRATE": "true",
        "ENABLE_KAFKA": "false",
        "DATA_DIR": str(tmp_path / host),
        "MODEL_POLL_S": str(POLL_S),
        "ACCESS_LOG": "false",
        "LOG_JSON": "false",
        "PYTHONUNBUFFERED": "1",
    }


async def _versions(client: httpx.AsyncClient, servers: list[ServerProcess]) -> set[str]:
    answers = [await client.get(f"{s.base_url}/api/v1/model/info") for s in servers]
    return {str(a.json()["version"]) for a in answers}


async def _all_serve(
    client: httpx.AsyncClient, servers: list[ServerProcess], version: str, within_s: float
) -> float:
    started = time.monotonic()
    while time.monotonic() - started < within_s:
        if await _versions(client, servers) == {version}:
            return time.monotonic() - started
        await asyncio.sleep(0.1)
    pytest.fail(
        f"not every host serves {version} after {within_s} s: {await _versions(client, servers)}"
    )


async def test_two_hosts_switch_to_a_new_model_and_roll_back_together(
    tmp_path: Path, pg_schema: str
) -> None:
    trainer = _host_env(tmp_path, "trainer", pg_schema)
    await succeeded(trainer, "migrate")  # stores the shared signing key
    world = tmp_path / "world.jsonl"
    await succeeded(
        trainer, "demo", "generate", "--out", str(world), "--users", "300", "--movies", "80"
    )
    servers = [
        ServerProcess(server_port(), _host_env(tmp_path, host, pg_schema), tmp_path / f"{host}.log")
        for host in ("host-a", "host-b")
    ]
    async with httpx.AsyncClient(timeout=10) as client:
        try:
            for server in servers:
                server.start()
                await server.wait_ready(client)
            assert await _versions(client, servers) == {"fallback"}

            first = _version_of(await succeeded(trainer, "train", "--events-file", str(world)))
            await _all_serve(client, servers, first, within_s=5 * POLL_S + 10)
            await asyncio.sleep(1.1)  # versions are named by the second they were trained
            second = _version_of(await succeeded(trainer, "train", "--events-file", str(world)))
            await _all_serve(client, servers, second, within_s=5 * POLL_S + 10)

            rolled_back = await client.post(f"{servers[0].base_url}/api/v1/model/rollback")
            assert rolled_back.status_code == 200, rolled_back.text
            assert rolled_back.json()["newVersion"] == first
            await _all_serve(client, servers, first, within_s=5 * POLL_S + 10)
            # neither host holds a model file or a key file: the store and the key are shared
            for host in ("host-a", "host-b"):
                assert not list((tmp_path / host).glob("**/recommender.pkl"))
                assert not list((tmp_path / host).glob("**/model-signing.key"))
        finally:
            for server in servers:
                await server.stop()
                print(server.log_tail())


def _version_of(trained: Finished) -> str:
    return str(orjson.loads(trained.last_line)["version"])
