"""Outbox relay: committed outbox rows -> bus, in id order, at least once.

Ordering: one relay is active at a time (an advisory transaction lock on Postgres; SQLite has one
process), and it claims, publishes and marks a batch inside one transaction before the next batch
is claimed. Per user, ids follow commit order because ingest transactions of one user serialize
(events/store_postgres.py), so each user's events reach the topic in commit order. A batch whose
publish fails is rolled back and retried with backoff: some of its messages may then arrive twice,
which consumers absorb (docs/topics.md). Ingestion never waits for the relay.

A message the bus refuses for good (MessageRejected: too large) is set aside in the same
transaction that marks the rest of its batch sent: kept, counted, listed by GET /admin/dlq, and
never in the way of the rows behind it (docs/topics.md: what this means for a user's order).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

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
from interaction_recommender.bus.base import Bus, Message, MessageRejected
from interaction_recommender.outbox.repository import OUTBOX_CHANNEL, OutboxRepository
from interaction_recommender.storage.database import Database
from interaction_recommender.storage.retention import delete_in_chunks

__all__ = ["OutboxRelay", "RelayState"]

log = structlog.get_logger(__name__)

_GAUGE_INTERVAL_S = 1.0
_CLEANUP_INTERVAL_S = 60.0


@dataclass
class RelayState:
    running: bool = False
    published_total: int = 0
    consecutive_failures: int = 0
    last_success_at: datetime | None = None
    last_error: str | None = None
    last_error_at: datetime | None = None


class OutboxRelay(BackgroundLoop):
    def __init__(
        self,
        database: Database,
        bus: Bus,
        *,
        batch_size: int,
        idle_poll_s: float,
        linger_s: float,
        max_backoff_s: float,
        retention_s: float,
    ) -> None:
        super().__init__("outbox-relay")
        self._database = database
        self._bus = bus
        self._batch_size = batch_size
        self._idle_poll_s = idle_poll_s
        self._linger_s = linger_s
        self._max_backoff_s = max_backoff_s
        self._retention = timedelta(seconds=retention_s)
        self._wake = asyncio.Event()
        self._next_gauges = 0.0
        self.state = RelayState()
        database.listen(OUTBOX_CHANNEL, self._wake.set)  # rows committed: publish them now

    async def stop(self, flush_timeout_s: float = 5.0) -> None:
        """Stop the loop, then publish what is still pending (bounded by the timeout)."""
        self._wake.set()
        await self._end()
        deadline = time.monotonic() + flush_timeout_s
        try:
            async with asyncio.timeout(flush_timeout_s):
                while time.monotonic() < deadline and await self.publish_once() > 0:
                    pass
        except Exception as exc:  # shutting down: report, never raise
            log.warning("outbox_flush_incomplete", error=type(exc).__name__)

    async def publish_once(self) -> int:
        """Claim, publish and mark one batch in one transaction; returns how many were sent."""
        async with self._database.transaction() as conn:
            repo = OutboxRepository(conn)
            if not await repo.try_become_relay():
                return 0
            batch = await repo.claim_batch(self._batch_size)
            if not batch:
                return 0
            refused: dict[int, str] = {}
            try:
                await self._bus.publish(
                    [Message(m.topic, m.key.encode() if m.key else None, m.payload) for m in batch]
                )
            except MessageRejected as exc:  # the others were delivered
                refused = {batch[index].id: reason for index, reason in exc.rejected.items()}
            now = datetime.now(UTC)
            await repo.mark_sent([m.id for m in batch if m.id not in refused], now)
            await repo.set_aside(refused, now)
        for row_id, reason in refused.items():
            log.error("outbox_row_set_aside", outbox_id=row_id, reason=reason)
        metrics.OUTBOX_SET_ASIDE.inc(len(refused))
        metrics.OUTBOX_PUBLISHED.inc(len(batch) - len(refused))
        self.state.published_total += len(batch) - len(refused)
        return len(batch)

    async def _run(self) -> None:
        self.state.running = True
        try:
            while not self.stopping:
                try:
                    await self._loop()
                except Exception:  # a bug must not silently stop publishing: log, restart
                    log.exception("outbox_relay_crashed")
                    await self.pause(1.0)
        finally:
            self.state.running = False

    async def _loop(self) -> None:
        next_cleanup = 0.0
        while not self.stopping:
            sent = await self._publish_with_retry()
            now = time.monotonic()
            await self._gauges_when_due()
            if now >= next_cleanup:
                next_cleanup = now + _CLEANUP_INTERVAL_S
                await self._guarded(self.delete_old_sent_rows())
            if sent < self._batch_size:
                await self._idle()

    async def _publish_with_retry(self) -> int:
        retrying = AsyncRetrying(
            retry=retry_if_exception_type(Exception),
            wait=wait_exponential(multiplier=0.1, max=self._max_backoff_s) + wait_random(0, 0.2),
            before_sleep=self._record_failure,
            sleep=self._between_retries,
            reraise=True,
        )
        sent = 0
        async for attempt in retrying:
            with attempt:
                if self.stopping:
                    return 0
                sent = await self.publish_once()
        self.state.consecutive_failures = 0
        self.state.last_success_at = datetime.now(UTC)
        return sent

    async def _between_retries(self, seconds: float) -> None:
        """While the broker is down the backlog gauges keep moving: alerts rely on them."""
        await self._gauges_when_due()
        await self.pause(seconds)

    async def _gauges_when_due(self) -> None:
        now = time.monotonic()
        if now >= self._next_gauges:
            self._next_gauges = now + _GAUGE_INTERVAL_S
            await self._guarded(self._update_gauges())

    def _record_failure(self, retry_state: RetryCallState) -> None:
        outcome = retry_state.outcome
        exc = outcome.exception() if outcome is not None else None
        metrics.OUTBOX_PUBLISH_FAILURES.inc()
        self.state.consecutive_failures += 1
        self.state.last_error = f"{type(exc).__name__}: {exc}"[:300]
        self.state.last_error_at = datetime.now(UTC)
        log.warning(
            "outbox_publish_failed",
            error=type(exc).__name__,
            attempt=retry_state.attempt_number,
            exc_info=exc if self.state.consecutive_failures == 1 else None,
        )

    async def _idle(self) -> None:
        try:
            await asyncio.wait_for(self._wake.wait(), self._idle_poll_s)
        except TimeoutError:
            return
        self._wake.clear()
        # Woken by a commit: linger a moment so that the next claim carries a batch. Waking for
        # every single event cost ~20% of the API process's throughput (docs/benchmarks.md).
        await self.pause(self._linger_s)

    async def _guarded(self, work: Awaitable[object]) -> None:
        try:
            await work
        except Exception as exc:  # housekeeping must never stop the relay
            log.warning("outbox_housekeeping_failed", error=type(exc).__name__)

    async def _update_gauges(self) -> None:
        async with self._database.transaction() as conn:
            repo = OutboxRepository(conn)
            count, oldest = await repo.backlog()
            set_aside = await repo.count_set_aside()
        metrics.OUTBOX_BACKLOG.set(count)
        metrics.OUTBOX_SET_ASIDE_ROWS.set(set_aside)
        age = (datetime.now(UTC) - oldest).total_seconds() if oldest else 0.0
        metrics.OUTBOX_OLDEST_AGE.set(max(age, 0.0))

    async def delete_old_sent_rows(self) -> int:
        """Delete rows sent longer than the retention ago, in bounded chunks; how many."""
        cutoff = datetime.now(UTC) - self._retention
        deleted = await delete_in_chunks(
            self._database,
            lambda conn, rows: OutboxRepository(conn).delete_sent_before(cutoff, rows),
        )
        if deleted:
            log.info("outbox_sent_rows_deleted", rows=deleted)
        return deleted
