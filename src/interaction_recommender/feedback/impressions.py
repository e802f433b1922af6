"""The impression log: every recommendation response, written after the answer left.

`record` only appends to a bounded in-memory buffer (no I/O, no await), so logging never slows an
answer. A background task writes the buffer in batches (one multi-row INSERT per batch) every
IMPRESSION_FLUSH_S or as soon as IMPRESSION_BATCH rows wait. A failed write keeps its rows and is
retried with backoff; when the database stays down long enough to fill IMPRESSION_BUFFER, new
impressions are dropped and counted (impressions_dropped_total) rather than growing memory without
bound. `stop` writes what is left (shutdown), and the loop also deletes rows past the retention.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from datetime import timedelta
from uuid import UUID

import structlog

from interaction_recommender import metrics
from interaction_recommender.background import BackgroundLoop
from interaction_recommender.feedback.repository import (
    FeedbackRepository,
    Impression,
    ImpressionRepository,
)
from interaction_recommender.storage.database import Database
from interaction_recommender.storage.erased import erased_among
from interaction_recommender.storage.retention import delete_in_chunks
from interaction_recommender.wire import utc_now

__all__ = ["ImpressionLog"]

log = structlog.get_logger(__name__)

_PRUNE_EVERY_S = 3600.0
_MAX_BACKOFF_S = 30.0


class ImpressionLog(BackgroundLoop):
    def __init__(
        self,
        database: Database,
        *,
        capacity: int,
        batch: int,
        flush_s: float,
        retention_days: int,
    ) -> None:
        super().__init__("impression-log")
        self._database = database
        self._capacity = capacity
        self._batch = batch
        self._flush_s = flush_s
        self._retention = timedelta(days=retention_days)
        self._pending: deque[Impression] = deque()
        self._wake = asyncio.Event()
        self._write_lock = asyncio.Lock()
        # The first clean-up waits a minute: at start-up (the embedded mode's demo load and first
        # training) the database has better things to do than delete old rows.
        self._next_prune = time.monotonic() + 60.0

    def record(self, impression: Impression) -> None:
        if len(self._pending) >= self._capacity:
            metrics.IMPRESSIONS_DROPPED.inc()
            return
        self._pending.append(impression)
        metrics.IMPRESSIONS_PENDING.set(len(self._pending))
        if len(self._pending) >= self._batch:
            self._wake.set()

    @property
    def pending(self) -> int:
        return len(self._pending)

    def holds(self, user_id: UUID) -> bool:
        """Whether an impression of this user is still in the buffer (not written yet)."""
        return any(i.user_id == user_id for i in self._pending)

    async def stop(self) -> None:
        await self._end(cancel_after_s=0)  # the final flush below writes what is left
        try:
            await self.flush()
        except Exception:  # shutdown with the database down: the log says how many were lost
            log.exception("impressions_lost_at_shutdown", count=len(self._pending))

    async def flush(self) -> None:
        """Write everything recorded so far (the feedback join calls it before it looks)."""
        async with self._write_lock:
            while self._pending:
                batch = [self._pending[i] for i in range(min(self._batch, len(self._pending)))]
                async with self._database.transaction() as conn:
                    erased = await erased_among(conn, {i.user_id for i in batch})
                    kept = [i for i in batch if i.user_id not in erased]
                    if kept:
                        await ImpressionRepository(conn).add(kept)
                if dropped := len(batch) - len(kept):
                    metrics.ERASED_USER_WRITES_DROPPED.labels("impression").inc(dropped)
                for _ in batch:  # removed only once stored: a failed write keeps them
                    self._pending.popleft()
                metrics.IMPRESSIONS_WRITTEN.inc(len(kept))
                metrics.IMPRESSIONS_PENDING.set(len(self._pending))

    async def forget_user(self, user_id: UUID) -> None:
        """Erasure: the user's impressions still in memory are never written."""
        async with self._write_lock:
            kept = [i for i in self._pending if i.user_id != user_id]
            self._pending.clear()
            self._pending.extend(kept)

    async def prune(self) -> int:
        """Delete impressions and feedback past the retention, in bounded chunks."""
        before = utc_now() - self._retention
        removed = await delete_in_chunks(
            self._database, lambda conn, rows: ImpressionRepository(conn).prune(before, rows)
        )
        removed += await delete_in_chunks(
            self._database, lambda conn, rows: FeedbackRepository(conn).prune(before, rows)
        )
        return removed

    async def _run(self) -> None:
        backoff = self._flush_s
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(backoff):
                    await self._wake.wait()
            self._wake.clear()
            try:
                await self.flush()
                if time.monotonic() >= self._next_prune:
                    if removed := await self.prune():
                        log.info("feedback_pruned", rows=removed)
                    self._next_prune = time.monotonic() + _PRUNE_EVERY_S
                backoff = self._flush_s
            except Exception as exc:  # kept and retried: the database may be back soon
                log.warning(
                    "impression_write_failed", error=type(exc).__name__, pending=self.pending
                )
                backoff = min(backoff * 2, _MAX_BACKOFF_S)
