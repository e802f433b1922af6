"""Kafka adapter (aiokafka). Connection is lazy and retried: a broker that is down at start-up
or later never stops the service; the outbox keeps the messages until a publish succeeds."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping, Sequence

import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import (
    KafkaError,
    MessageSizeTooLargeError,
    RecordListTooLargeError,
    RecordTooLargeError,
    TopicAlreadyExistsError,
)

from interaction_recommender.bus.base import (
    BusError,
    Message,
    MessageRejected,
    Record,
    Subscription,
    oversized,
)

__all__ = ["KafkaBus"]

log = structlog.get_logger(__name__)

_CONSUMER_START_TIMEOUT_S = 60.0
# What the broker answers for a message over its `message.max.bytes` (or the topic's
# `max.message.bytes`): no retry can deliver that message.
_REFUSED_FOR_SIZE = (MessageSizeTooLargeError, RecordListTooLargeError, RecordTooLargeError)


class KafkaBus:
    name = "kafka"

    def __init__(
        self,
        bootstrap_servers: str,
        *,
        topics: Mapping[str, Mapping[str, str]],
        partitions: int,
        replication_factor: int,
        request_timeout_ms: int,
        max_request_size: int,
        session_timeout_ms: int = 10_000,
    ) -> None:
        self._servers = bootstrap_servers
        self._max_request_size = max_request_size
        self._session_timeout_ms = session_timeout_ms
        self._topics = {name: dict(configs) for name, configs in topics.items()}
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
                max_request_size=self._max_request_size,
                # One producer batch per partition per relay batch: a batch is written all or
                # nothing, so a publish that fails can never leave a later part of a partition's
                # messages on the topic without an earlier part (which the retry would then put
                # behind it, where the consumers take it for a repeat). The 16 KB default split a
                # relay batch in several, and an expired first one let the next one through
                # (tests/faults/test_kafka_paused.py).
                max_batch_size=self._max_request_size,
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
                await self._create(admin, missing)
        finally:
            await admin.close()

    async def _create(self, admin: AIOKafkaAdminClient, names: list[str]) -> None:
        """With their configs (compaction, retention); a broker that refuses a config gets the
        topic without it, and the log says so (docs/topics.md: what a cluster must set)."""

        def new(name: str, with_configs: bool) -> NewTopic:
            configs = self._topics[name] if with_configs else {}
            return NewTopic(name, self._partitions, self._replication, topic_configs=configs)

        try:
            with contextlib.suppress(TopicAlreadyExistsError):  # another replica was first
                await admin.create_topics([new(t, True) for t in names])
        except KafkaError as exc:
            log.warning("kafka_topic_configs_refused", error=type(exc).__name__, topics=names)
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics([new(t, False) for t in names])
        log.info("kafka_topics_created", topics=names, partitions=self._partitions)

    async def publish(self, messages: Sequence[Message]) -> None:
        producer = await self._connected()
        refused = oversized(messages, self._max_request_size)  # the producer would raise
        sendable = [(i, m) for i, m in enumerate(messages) if i not in refused]
        try:
            async with asyncio.timeout(self._timeout_s * 2):
                futures = [await producer.send(m.topic, m.value, key=m.key) for _, m in sendable]
                results = await asyncio.gather(*futures, return_exceptions=True)
        except (KafkaError, TimeoutError, OSError) as exc:
            raise BusError(f"publish failed: {type(exc).__name__}") from exc
        failures = [
            (index, result)
            for (index, _), result in zip(sendable, results, strict=True)
            if isinstance(result, BaseException)
        ]
        transient = [exc for _, exc in failures if not isinstance(exc, _REFUSED_FOR_SIZE)]
        if transient:
            raise BusError(f"publish failed: {type(transient[0]).__name__}") from transient[0]
        for index, failure in failures:
            refused[index] = f"too large for the broker: {type(failure).__name__}"
        if refused:
            raise MessageRejected(refused)

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

    def subscribe(self, topics: Sequence[str], group: str) -> Subscription:
        return KafkaSubscription(
            self._servers,
            list(topics),
            group,
            request_timeout_ms=self._timeout_ms,
            session_timeout_ms=self._session_timeout_ms,
        )


class KafkaSubscription:
    """A consumer-group member with manual commits. The consumer is started lazily in ``poll``
    and restarted after a failure, so a broker that is down only delays consumption."""

    def __init__(
        self,
        servers: str,
        topics: list[str],
        group: str,
        *,
        request_timeout_ms: int,
        session_timeout_ms: int,
    ) -> None:
        self._servers = servers
        self._topics = topics
        self._group = group
        self._request_timeout_ms = request_timeout_ms
        self._session_timeout_ms = session_timeout_ms
        self._consumer: AIOKafkaConsumer | None = None

    async def _started(self) -> AIOKafkaConsumer:
        if self._consumer is None:
            consumer = AIOKafkaConsumer(
                *self._topics,
                bootstrap_servers=self._servers,
                group_id=self._group,
                client_id=f"interaction-recommender-{self._group}",
                enable_auto_commit=False,
                auto_offset_reset="earliest",
                request_timeout_ms=max(self._request_timeout_ms, self._session_timeout_ms + 1000),
                session_timeout_ms=self._session_timeout_ms,
                heartbeat_interval_ms=max(self._session_timeout_ms // 3, 100),
                metadata_max_age_ms=5000,  # notice topics created after we subscribed
            )
            try:
                # Starting includes the first group join (~5 s on the test broker): be patient.
                await asyncio.wait_for(consumer.start(), _CONSUMER_START_TIMEOUT_S)
            except (KafkaError, TimeoutError, OSError) as exc:
                await _quietly_stop_consumer(consumer)
                raise BusError(f"kafka consumer could not start: {type(exc).__name__}") from exc
            self._consumer = consumer
        return self._consumer

    async def poll(self, max_records: int, timeout_s: float) -> list[Record]:
        consumer = await self._started()
        try:
            batches = await consumer.getmany(
                timeout_ms=int(timeout_s * 1000), max_records=max_records
            )
        except KafkaError as exc:
            raise BusError(f"poll failed: {type(exc).__name__}") from exc
        return [
            Record(tp.topic, tp.partition, m.offset, m.key, m.value)
            for tp, messages in batches.items()
            for m in messages
        ]

    async def commit(self) -> None:
        if self._consumer is None:
            return
        try:
            await self._consumer.commit()
        except KafkaError as exc:
            # E.g. a rebalance took the partitions away: the records will be delivered again,
            # which the handlers absorb (they are idempotent).
            raise BusError(f"commit failed: {type(exc).__name__}") from exc

    async def lag(self) -> dict[str, int]:
        if self._consumer is None:
            return {}
        lags: dict[str, int] = {}
        for tp in self._consumer.assignment():
            highwater = self._consumer.highwater(tp)  # known after the first fetch
            if highwater is None:
                continue
            try:
                position = await asyncio.wait_for(self._consumer.position(tp), 1.0)
            except (KafkaError, TimeoutError):
                continue
            lags[f"{tp.topic}:{tp.partition}"] = max(highwater - position, 0)
        return lags

    async def rewind(self) -> None:
        if self._consumer is None:
            return
        try:
            for tp in self._consumer.assignment():
                committed = await self._consumer.committed(tp)
                if committed is None:
                    await self._consumer.seek_to_beginning(tp)
                else:
                    self._consumer.seek(tp, committed)
        except KafkaError:
            # Cannot even ask: start over, the group's committed offsets decide where to resume.
            await self.close()

    async def close(self) -> None:
        if self._consumer is not None:
            consumer, self._consumer = self._consumer, None
            await _quietly_stop_consumer(consumer)


async def _quietly_stop_consumer(consumer: AIOKafkaConsumer) -> None:
    with contextlib.suppress(KafkaError, TimeoutError, OSError):
        await asyncio.wait_for(consumer.stop(), 5)


async def _quietly_stop(producer: AIOKafkaProducer) -> None:
    with contextlib.suppress(KafkaError, TimeoutError, OSError):
        await asyncio.wait_for(producer.stop(), 2)
