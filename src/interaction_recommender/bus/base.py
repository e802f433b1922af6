"""The bus interface every implementation (Kafka, in-process) satisfies."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

__all__ = ["Bus", "BusError", "Message"]


class BusError(Exception):
    """Publishing failed or timed out; the caller keeps the messages and retries later."""


@dataclass(frozen=True, slots=True)
class Message:
    topic: str
    key: bytes | None
    value: bytes


class Bus(Protocol):
    name: str
    """"kafka" or "in-process": shown in health and logs."""

    async def start(self) -> None:
        """Prepare the client. Never fails because the broker is down: connecting is retried
        on the next publish."""

    async def stop(self) -> None: ...

    async def publish(self, messages: Sequence[Message]) -> None:
        """Deliver every message (in order per topic and key) or raise BusError. A BusError does
        not mean nothing was delivered: delivery is at-least-once."""

    async def probe(self) -> str:
        """Raise if the bus cannot be reached; else a short human-readable state."""
