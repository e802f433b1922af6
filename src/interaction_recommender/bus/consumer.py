"""The consumer loop every stage uses: poll a batch, hand it to the handler, commit only after
the handler returned (its effect is durable), retry with backoff when it raised.

Delivery is at least once: a crash between handling and committing delivers the batch again,
so handlers must be idempotent.

Poison: a batch that failed ``isolate_after`` times in a row for a reason other than a dependency
(a bug, a message the handler cannot read) is handled again one record at a time; a record that
still fails goes to ``on_poison`` (the dead letters, with this consumer's group named) and the
partition moves on. A dependency that is down (database, Redis, broker) never makes poison: the
batch is simply retried until it answers.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import structlog
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    wait_exponential,
    wait_random,
)

from interaction_recommender import metrics
from interaction_recommender.background import BackgroundLoop
from interaction_recommender.bus.base import BusError, Record, Subscription
from interaction_recommender.errors import is_dependency_failure

__all__ = ["ConsumerLoop", "ConsumerState", "Handler", "PoisonHandler", "Retryable"]

log = structlog.get_logger(__name__)

Handler = Callable[[list[Record]], Awaitable[None]]
PoisonHandler = Callable[[Record, BaseException, int], Awaitable[None]]
"""(record, error, attempts): keep the record durably (a dead letter) before the offset moves on."""


class Retryable(Exception):
    """A failure that a retry resolves (e.g. a concurrent write): never a reason for poison."""


def _transient(exc: BaseException) -> bool:
    return isinstance(exc, Retryable | BusError) or is_dependency_failure(exc)


@dataclass
class ConsumerState:
    running: bool = False
    processed: int = 0
    consecutive_failures: int = 0
    last_error: str | None = None
    last_error_at: datetime | None = None
    last_batch_at: datetime | None = None
    lag: dict[str, int] = field(default_factory=dict)
    started_at: datetime | None = None

    def stuck(self, now: datetime, after_s: float) -> bool:
        """Messages are waiting and nothing was processed for ``after_s`` seconds."""
        if not any(self.lag.values()):
            return False
        last = self.last_batch_at or self.started_at
        return last is not None and (now - last).total_seconds() > after_s


class ConsumerLoop(BackgroundLoop):
    def __init__(
        self,
        name: str,
        subscription: Subscription,
        handler: Handler,
        *,
        max_records: int = 500,
        poll_timeout_s: float = 0.5,
        max_backoff_s: float = 10.0,
        on_poison: PoisonHandler | None = None,
        isolate_after: int = 3,
    ) -> None:
        super().__init__(f"consumer-{name}")
        self._on_poison = on_poison
        self._isolate_after = isolate_after
        self.name = name
        self._subscription = subscription
        self._handler = handler
        self._max_records = max_records
        self._poll_timeout_s = poll_timeout_s
        self._max_backoff_s = max_backoff_s
        self._handling = False
        self.state = ConsumerState()

    async def stop(self, grace_s: float = 1.0) -> None:
        """Stop after the current batch, or cancel it after ``grace_s``: an interrupted batch is
        not committed, so it is simply delivered again later (handlers are idempotent). Waiting
        in poll() has nothing to lose: that stops at once."""
        await self._end(cancel_after_s=grace_s if self._handling else 0)
        await self._subscription.close()

    async def _run(self) -> None:
        self.state.running = True
        self.state.started_at = datetime.now(UTC)
        try:
            async for attempt in self._retrying():
                with attempt:
                    await self._consume()
        except asyncio.CancelledError:
            raise
        finally:
            self.state.running = False

    async def _consume(self) -> None:
        while not self.stopping:
            records = await self._subscription.poll(self._max_records, self._poll_timeout_s)
            if records:
                self._handling = True
                try:
                    await self._handle(records)
                    await self._subscription.commit()
                except Exception:
                    await self._subscription.rewind()  # the batch comes again on the retry
                    raise
                finally:
                    self._handling = False
                self.state.processed += len(records)
                self.state.last_batch_at = datetime.now(UTC)
            self.state.consecutive_failures = 0
            await self._update_lag()

    async def _handle(self, records: list[Record]) -> None:
        try:
            await self._handler(records)
        except Exception as exc:
            failures = self.state.consecutive_failures + 1
            if self._on_poison is None or _transient(exc) or failures < self._isolate_after:
                raise
            log.warning("consumer_isolating_batch", consumer=self.name, records=len(records))
            await self._isolate(records, failures)

    async def _isolate(self, records: list[Record], attempts: int) -> None:
        """One record at a time: the ones that still fail (not for a dependency) are poison."""
        assert self._on_poison is not None
        for record in records:
            try:
                await self._handler([record])
            except Exception as exc:
                if _transient(exc):
                    raise
                await self._on_poison(record, exc, attempts + 1)
                metrics.CONSUMER_POISON.labels(self.name).inc()
                log.error(
                    "consumer_poison_dead_lettered",
                    consumer=self.name,
                    topic=record.topic,
                    partition=record.partition,
                    offset=record.offset,
                    error=type(exc).__name__,
                )

    async def _update_lag(self) -> None:
        self.state.lag = await self._subscription.lag()
        for where, lag in self.state.lag.items():
            topic, _, partition = where.rpartition(":")
            metrics.CONSUMER_LAG.labels(self.name, topic, partition).set(lag)

    def _retrying(self) -> AsyncRetrying:
        # Everything is retried for ever (a consumer that gives up silently is worse); health
        # reports consecutive failures. Uncommitted records are polled again after a failure.
        return AsyncRetrying(
            retry=retry_if_exception_type(Exception),
            wait=wait_exponential(multiplier=0.2, max=self._max_backoff_s) + wait_random(0, 0.2),
            before_sleep=self._record_failure,
            sleep=self.pause,
            reraise=True,
        )

    def _record_failure(self, retry_state: RetryCallState) -> None:
        outcome = retry_state.outcome
        exc = outcome.exception() if outcome is not None else None
        self.state.consecutive_failures += 1
        self.state.last_error = f"{type(exc).__name__}: {exc}"[:300]
        self.state.last_error_at = datetime.now(UTC)
        log.warning(
            "consumer_failed",
            consumer=self.name,
            error=type(exc).__name__,
            attempt=retry_state.attempt_number,
            exc_info=exc if self.state.consecutive_failures == 1 else None,
        )
