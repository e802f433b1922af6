"""Chooses the bus from the settings: ENABLE_KAFKA=true -> Kafka, otherwise in-process."""

from __future__ import annotations

from interaction_recommender.bus.base import Bus
from interaction_recommender.bus.memory import MemoryBus
from interaction_recommender.bus.topics import Topics
from interaction_recommender.settings import Settings

__all__ = ["build_bus"]


def build_bus(settings: Settings) -> Bus:
    if not settings.enable_kafka:
        return MemoryBus(max_request_size=settings.kafka_max_request_size)
    from interaction_recommender.bus.kafka import KafkaBus  # aiokafka only when needed

    return KafkaBus(
        settings.kafka_bootstrap_servers,
        topics=Topics.with_prefix(settings.kafka_topic_prefix).configs(
            settings.kafka_retention_ms,
            [
                settings.features_consumer_group,
                settings.catalog_consumer_group,
                settings.attribution_consumer_group,
            ],
        ),
        partitions=settings.kafka_topic_partitions,
        replication_factor=settings.kafka_replication_factor,
        request_timeout_ms=settings.kafka_request_timeout_ms,
        session_timeout_ms=settings.kafka_session_timeout_ms,
        max_request_size=settings.kafka_max_request_size,
    )
