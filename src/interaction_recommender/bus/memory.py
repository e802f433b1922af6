"""The in-process bus of the embedded mode: an append-only log per topic, like a one-partition
Kafka topic, held in memory and capped so that a long-running demo cannot exhaust memory."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Sequence

from interaction_recommender.bus.base import Message

__all__ = ["MemoryBus"]


class _TopicLog:
    def __init__(self, capacity: int) -> None:
        self.messages: deque[Message] = deque(maxlen=capacity)
        self.base_offset = 0  # offset of messages[0]; grows as old messages fall off
        self.changed = asyncio.Condition()

    @property
    def end_offset(self) -> int:
        return self.base_offset + len(self.messages)


class MemoryBus:
    name = "in-process"

    def __init__(self, capacity_per_topic: int = 200_000) -> None:
        self._capacity = capacity_per_topic
        self._topics: dict[str, _TopicLog] = {}

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
        touched: set[str] = set()
        for message in messages:
            log = self._log(message.topic)
            if len(log.messages) == log.messages.maxlen:
                log.base_offset += 1
            log.messages.append(message)
            touched.add(message.topic)
        for topic in touched:
            log = self._topics[topic]
            async with log.changed:
                log.changed.notify_all()

    async def probe(self) -> str:
        return "in-process bus"

    def end_offset(self, topic: str) -> int:
        return self._log(topic).end_offset

    def read(self, topic: str, offset: int, limit: int = 500) -> tuple[int, list[Message]]:
        """Messages from ``offset`` (clamped to the oldest kept); returns the next offset."""
        log = self._log(topic)
        start = max(offset, log.base_offset)
        items = [
            log.messages[i - log.base_offset]
            for i in range(start, min(start + limit, log.end_offset))
        ]
        return start + len(items), items

    async def wait_for(self, topic: str, offset: int, timeout: float) -> None:
        """Return when the topic has messages at or after ``offset`` (or after ``timeout``)."""
        log = self._log(topic)
        async with log.changed:
            try:
                await asyncio.wait_for(
                    log.changed.wait_for(lambda: log.end_offset > offset), timeout
                )
            except TimeoutError:
                return
