"""Topics are created with the configuration erasure relies on (docs/topics.md, retention)."""

from __future__ import annotations

from pathlib import Path

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from tests.fixtures.app import platform_settings, run_service
from tests.fixtures.services import KafkaBroker

pytestmark = pytest.mark.kafka


async def _configs(bootstrap: str, topic: str) -> dict[str, str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        (response,) = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, topic)]
        )
    finally:
        await admin.close()
    (resource,) = response.resources
    return {entry[0]: entry[1] for entry in resource[4]}


async def test_processed_features_is_compacted_and_the_others_expire(
    tmp_path: Path, pg_schema: str, redis_url: str, kafka_broker: KafkaBroker
) -> None:
    settings = platform_settings(
        tmp_path, pg_schema, redis_url, kafka_broker, kafka_retention_ms=3 * 86_400_000
    )
    async with run_service(settings) as service:
        await service.runtime.bus.probe()  # connected: the topics exist
        topics = service.runtime.topics
        features = await _configs(kafka_broker.bootstrap, topics.processed_features)
        events = await _configs(kafka_broker.bootstrap, topics.interaction_events)

    assert features.get("cleanup.policy") == "compact"
    assert events.get("retention.ms") == str(3 * 86_400_000)
