"""The in-process bus of the embedded mode: an append-only log per topic, like a one-partition
Kafka topic, held in memory and capped so that a long-running demo cannot exhaust memory.
Consumer groups keep committed offsets in memory (lost with the process, like the log itself)."""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Sequence

from interaction_recommender.bus.base import (
    Message,
    MessageRejected,
    Record,
    Subscription,
    oversized,
)

__all__ = ["MemoryBus"]


class _TopicLog:
    def __init__(self, capacity: int) -> None:
        self.messages: deque[Message] = deque(maxlen=capacity)
        self.base_offset = 0  # offset of messages[0]; grows as old messages fall off

    @property
    def end_offset(self) -> int:
        return self.base_offset + len(self.messages)


class MemoryBus:
    name = "in-process"

    def __init__(
        self, capacity_per_topic: int = 1_000_000, *, max_request_size: int = 1_048_576
    ) -> None:
        self._capacity = capacity_per_topic
        # The same size limit as the Kafka producer: the embedded mode refuses what Kafka would.
        self._max_request_size = max_request_size
        self._topics: dict[str, _TopicLog] = {}
        self._committed: dict[tuple[str, str], int] = {}  # (group, topic) -> next offset
        # Set (and replaced) by every publish. An Event, not a Condition: a consumer cancelled at
        # shutdown while a Condition re-acquired its lock could leave the lock "unlocked with a
        # waiter" on Python 3.11 (the next waiter hung until the lifespan's timeout).
        self._published = asyncio.Event()

    def _log(self, topic: str) -> _TopicLog:
        log = self._topics.get(topic)
        if log is None:
            log = self._topics[topic] = _TopicLog(self._capacity)
        return log

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def publish(self, messages: Sequence[Message]) -> None:
        refused = oversized(messages, self._max_request_size)
        for index, message in enumerate(messages):
            if index in refused:
                continue
            log = self._log(message.topic)
            if len(log.messages) == log.messages.maxlen:
                log.base_offset += 1
            log.messages.append(message)
        published, self._published = self._published, asyncio.Event()
        published.set()
        if refused:
            raise MessageRejected(refused)

    async def probe(self) -> str:
        return "in-process bus"

    def end_offset(self, topic: str) -> int:
        return self._log(topic).end_offset

    def read(self, topic: str, offset: int, limit: int = 500) -> tuple[int, list[Message]]:
        """Messages from ``offset`` (clamped to the oldest kept); returns the next offset."""
        log = self._log(topic)
        start = max(offset, log.base_offset)
        stop = min(start + limit, log.end_offset)
        items = [log.messages[i - log.base_offset] for i in range(start, stop)]
        return start + len(items), items

    async def wait_for_messages(self, timeout_s: float) -> None:
        """Return at the next publish, or after ``timeout_s``. The event is taken before the
        first await, so a publish right after the caller's last read is not missed."""
        published = self._published
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(published.wait(), timeout_s)

    def committed(self, group: str, topic: str) -> int:
        return self._committed.get((group, topic), 0)

    def commit_offset(self, group: str, topic: str, offset: int) -> None:
        self._committed[(group, topic)] = offset

    def subscribe(self, topics: Sequence[str], group: str) -> Subscription:
        return _MemorySubscription(self, list(topics), group)


class _MemorySubscription:
    def __init__(self, bus: MemoryBus, topics: list[str], group: str) -> None:
        self._bus = bus
        self._topics = topics
        self._group = group
        self._positions = {t: bus.committed(group, t) for t in topics}

    async def poll(self, max_records: int, timeout_s: float) -> list[Record]:
        records = self._take(max_records)
        if not records:
            await self._bus.wait_for_messages(timeout_s)
            records = self._take(max_records)
        return records

    def _take(self, max_records: int) -> list[Record]:
        records: list[Record] = []
        for topic in self._topics:
            next_offset, messages = self._bus.read(
                topic, self._positions[topic], max_records - len(records)
            )
            first = next_offset - len(messages)
            records += [Record(topic, 0, first + i, m.key, m.value) for i, m in enumerate(messages)]
            self._positions[topic] = next_offset
            if len(records) >= max_records:
                break
        return records

    async def commit(self) -> None:
        for topic, position in self._positions.items():
            self._bus.commit_offset(self._group, topic, position)

    async def rewind(self) -> None:
        self._positions = {t: self._bus.committed(self._group, t) for t in self._topics}

    async def lag(self) -> dict[str, int]:
        return {f"{t}:0": self._bus.end_offset(t) - p for t, p in self._positions.items()}

    async def close(self) -> None:
        return None
