"""The bus interface every implementation (Kafka, in-process) satisfies."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

__all__ = [
    "RECORD_OVERHEAD",
    "Bus",
    "BusError",
    "Message",
    "MessageRejected",
    "Record",
    "Subscription",
    "oversized",
    "record_size",
]

RECORD_OVERHEAD = 128
"""Bytes a Kafka record takes beyond its key and value, rounded up: aiokafka's own estimate is a
61-byte batch header, at most 21 bytes of record overhead and the varint lengths."""


class BusError(Exception):
    """Publishing failed or timed out; the caller keeps the messages and retries later."""


class MessageRejected(BusError):
    """Some messages can never be delivered (too large for the producer or the broker); every
    other message of the same ``publish`` call was delivered. ``rejected``: index -> reason."""

    def __init__(self, rejected: dict[int, str]) -> None:
        self.rejected = rejected
        super().__init__(f"{len(rejected)} message(s) refused: {next(iter(rejected.values()))}")


@dataclass(frozen=True, slots=True)
class Message:
    topic: str
    key: bytes | None
    value: bytes | None  # None: a tombstone


@dataclass(frozen=True, slots=True)
class Record:
    """A consumed message and where it came from."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


def record_size(key: bytes | None, value: bytes | None) -> int:
    """An upper bound of the bytes one message takes in a produce request."""
    return len(key or b"") + len(value or b"") + RECORD_OVERHEAD


def oversized(messages: Sequence[Message], max_request_size: int) -> dict[int, str]:
    """The messages no producer with this ``max_request_size`` can send: index -> reason."""
    refused: dict[int, str] = {}
    for index, message in enumerate(messages):
        size = record_size(message.key, message.value)
        if size > max_request_size:
            refused[index] = f"too large: {size} bytes, max_request_size is {max_request_size}"
    return refused


class Subscription(Protocol):
    """A consumer-group member. Offsets are committed only by ``commit()``, after the caller has
    durably handled what ``poll()`` returned; whatever was not committed is delivered again (to
    this member or, after a rebalance or restart, another one)."""

    async def poll(self, max_records: int, timeout_s: float) -> list[Record]: ...

    async def commit(self) -> None:
        """Commit everything returned by ``poll()`` so far."""

    async def rewind(self) -> None:
        """Go back to the last committed offsets, so that the next ``poll()`` returns again what
        a failed batch held."""

    async def lag(self) -> dict[str, int]:
        """Messages not consumed yet, per "topic:partition" this member holds (as last seen)."""

    async def close(self) -> None: ...


class Bus(Protocol):
    name: str
    """"kafka" or "in-process": shown in health and logs."""

    async def start(self) -> None:
        """Prepare the client. Never fails because the broker is down: connecting is retried
        on the next publish."""

    async def stop(self) -> None: ...

    async def publish(self, messages: Sequence[Message]) -> None:
        """Deliver every message (in order per topic and key) or raise BusError. A BusError does
        not mean nothing was delivered: delivery is at-least-once. MessageRejected: the messages
        it names can never be delivered, and every other one was."""

    async def probe(self) -> str:
        """Raise if the bus cannot be reached; else a short human-readable state."""

    def subscribe(self, topics: Sequence[str], group: str) -> Subscription:
        """Join consumer group ``group`` on ``topics`` (from the earliest offset when the group
        has none). Connecting happens lazily in ``poll()``, retried while the bus is down."""
