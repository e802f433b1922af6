"""Kafka adapter (aiokafka). Connection is lazy and retried: a broker that is down at start-up
or later never stops the service; the outbox keeps the messages until a publish succeeds."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence

import structlog
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError

from interaction_recommender.bus.base import BusError, Message

__all__ = ["KafkaBus"]

log = structlog.get_logger(__name__)


class KafkaBus:
    name = "kafka"

    def __init__(
        self,
        bootstrap_servers: str,
        *,
        topics: Sequence[str],
        partitions: int,
        replication_factor: int,
        request_timeout_ms: int,
    ) -> None:
        self._servers = bootstrap_servers
        self._topics = list(topics)
        self._partitions = partitions
        self._replication = replication_factor
        self._timeout_ms = request_timeout_ms
        self._producer: AIOKafkaProducer | None = None
        self._lock = asyncio.Lock()

    @property
    def _timeout_s(self) -> float:
        return self._timeout_ms / 1000

    async def start(self) -> None:
        try:
            await self._connected()
        except BusError as exc:
            log.warning("kafka_unavailable_at_start", error=str(exc))

    async def stop(self) -> None:
        async with self._lock:
            if self._producer is not None:
                producer, self._producer = self._producer, None
                try:
                    await asyncio.wait_for(producer.stop(), self._timeout_s)
                except (KafkaError, TimeoutError, OSError) as exc:
                    log.warning("kafka_stop_failed", error=type(exc).__name__)

    async def _connected(self) -> AIOKafkaProducer:
        async with self._lock:
            if self._producer is not None:
                return self._producer
            producer = AIOKafkaProducer(
                bootstrap_servers=self._servers,
                client_id="interaction-recommender",
                acks="all",
                # The test broker (and some managed brokers) lack InitProducerId; consumers make
                # the effect exactly-once instead (docs/topics.md).
                enable_idempotence=False,
                request_timeout_ms=self._timeout_ms,
                retry_backoff_ms=200,
                linger_ms=2,
            )
            try:
                await asyncio.wait_for(producer.start(), self._timeout_s)
                await asyncio.wait_for(self._ensure_topics(), self._timeout_s)
            except (KafkaError, TimeoutError, OSError) as exc:
                await _quietly_stop(producer)
                raise BusError(f"kafka unreachable: {type(exc).__name__}") from exc
            self._producer = producer
            log.info("kafka_connected", servers=self._servers)
            return producer

    async def _ensure_topics(self) -> None:
        admin = AIOKafkaAdminClient(
            bootstrap_servers=self._servers, request_timeout_ms=self._timeout_ms
        )
        await admin.start()
        try:
            existing = set(await admin.list_topics())
            missing = [t for t in self._topics if t not in existing]
            if missing:
                # Another replica may create them first.
                with contextlib.suppress(TopicAlreadyExistsError):
                    await admin.create_topics(
                        [NewTopic(t, self._partitions, self._replication) for t in missing]
                    )
                log.info("kafka_topics_created", topics=missing, partitions=self._partitions)
        finally:
            await admin.close()

    async def publish(self, messages: Sequence[Message]) -> None:
        producer = await self._connected()
        try:
            async with asyncio.timeout(self._timeout_s * 2):
                futures = [await producer.send(m.topic, m.value, key=m.key) for m in messages]
                results = await asyncio.gather(*futures, return_exceptions=True)
        except (KafkaError, TimeoutError, OSError) as exc:
            raise BusError(f"publish failed: {type(exc).__name__}") from exc
        failures = [r for r in results if isinstance(r, BaseException)]
        if failures:
            raise BusError(f"publish failed: {type(failures[0]).__name__}") from failures[0]

    async def probe(self) -> str:
        producer = await self._connected()
        try:
            async with asyncio.timeout(self._timeout_s):
                metadata = await producer.client.fetch_all_metadata()
        except (KafkaError, TimeoutError, OSError) as exc:
            raise BusError(f"metadata request failed: {type(exc).__name__}") from exc
        brokers = len(metadata.brokers())
        if brokers == 0:
            raise BusError("no broker answered")
        return f"{brokers} broker(s) reachable"


async def _quietly_stop(producer: AIOKafkaProducer) -> None:
    with contextlib.suppress(KafkaError, TimeoutError, OSError):
        await asyncio.wait_for(producer.stop(), 2)
