"""User erasure as a durable job: everything the service keeps about a user, gone, and kept gone.

``DELETE /users/{id}`` records the job and the user's suppression entry (`erased_users`) in one
transaction, then runs the job's steps once at once; whatever fails is retried by every process's
runner until it succeeds (docs/features.md, erasure). Steps, in order:

- ``database``: under the user's ingest lock and feature lock, delete the raw events, the feature
  snapshot, the outbox messages not sent yet (sent ones keep no payload and no key: outbox/
  repository.py), dead letters, impressions and feedback, and queue a `processed_features`
  tombstone;
- ``online_features``: the Redis tombstone that no later feature write replaces;
- ``caches``: this process's impression buffer and recommendation lists; the near caches of the
  other processes hear it on the invalidation channel (recs/near_cache.py);
- ``sweep``: the database step again, ERASURE_SWEEP_AFTER_S after the request: whatever a writer
  that raced the erasure committed afterwards (an impression buffered in another replica, a
  feedback in flight) goes too.

Writers check `erased_users` themselves (ingest in its own statement, feedback and impressions in
their transactions), so nothing new is stored after the request; the sweep is the safety net.
The `erasures` row is the audit record: when, which steps, how many attempts; never the user id.
Later stores add their own step with ``register``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Protocol
from uuid import UUID

import structlog

from interaction_recommender import metrics
from interaction_recommender.background import BackgroundLoop
from interaction_recommender.deadletter.repository import DeadLetterRepository
from interaction_recommender.events.repository import delete_user_events, lock_user_ingest
from interaction_recommender.features.repository import SnapshotRepository
from interaction_recommender.features.store import FeatureStore
from interaction_recommender.feedback.impressions import ImpressionLog
from interaction_recommender.feedback.repository import FeedbackRepository, ImpressionRepository
from interaction_recommender.outbox.repository import OutboxMessage, OutboxRepository
from interaction_recommender.storage.database import Database
from interaction_recommender.users.repository import ErasureRecord, ErasureRepository
from interaction_recommender.wire import utc_now

__all__ = [
    "CachesStep",
    "DatabaseStep",
    "ErasureJobs",
    "ErasureStep",
    "OnlineFeaturesStep",
    "UserCache",
    "erasure_document",
]

log = structlog.get_logger(__name__)

_BATCH = 20  # jobs per runner pass


class UserCache(Protocol):
    """Something that keeps per-user data outside the database (e.g. recommendation lists)."""

    async def forget(self, user_id: UUID) -> None: ...


class ErasureStep(Protocol):
    """One store's part of an erasure. Idempotent: it may run again after a failure, in this
    process or another one."""

    name: str
    delay_s: float
    """Run no earlier than this long after the request (0: at once)."""

    async def erase(self, user_id: UUID) -> None: ...


@dataclass
class DatabaseStep:
    database: Database
    features_topic: str
    name: str = "database"
    delay_s: float = 0.0

    async def erase(self, user_id: UUID) -> None:
        async with self.database.transaction() as conn:
            # Ingest's lock first (ingest takes only that one), then the feature writers' lock:
            # an ingest or a consumer write in flight commits before these deletes run.
            await lock_user_ingest(conn, user_id)
            snapshot = SnapshotRepository(conn)
            await snapshot.lock_users([user_id])
            await snapshot.delete(user_id)
            await delete_user_events(conn, user_id)
            outbox = OutboxRepository(conn)
            await outbox.delete_unsent(str(user_id))
            await DeadLetterRepository(conn).delete_user(user_id)
            await ImpressionRepository(conn).delete_user(user_id)
            await FeedbackRepository(conn).delete_user(user_id)
            await outbox.add(
                [OutboxMessage(topic=self.features_topic, key=str(user_id), payload=None)],
                utc_now(),
            )


@dataclass
class OnlineFeaturesStep:
    store: FeatureStore
    name: str = "online_features"
    delay_s: float = 0.0

    async def erase(self, user_id: UUID) -> None:
        await self.store.erase(user_id)


@dataclass
class CachesStep:
    caches: Sequence[UserCache]
    impressions: ImpressionLog | None
    name: str = "caches"
    delay_s: float = 0.0

    async def erase(self, user_id: UUID) -> None:
        if self.impressions is not None:
            await self.impressions.forget_user(user_id)
        for cache in self.caches:
            await cache.forget(user_id)


class ErasureJobs(BackgroundLoop):
    """Requests erasures, runs their steps, retries the failed ones (every process runs one)."""

    def __init__(
        self,
        database: Database,
        steps: Sequence[ErasureStep],
        *,
        poll_s: float,
        max_backoff_s: float,
    ) -> None:
        super().__init__("erasure-jobs")
        self._database = database
        self._steps = list(steps)
        self._poll_s = poll_s
        self._max_backoff_s = max_backoff_s
        self._running = asyncio.Lock()  # one attempt at a time in this process
        self._wake = asyncio.Event()

    async def stop(self) -> None:
        self._wake.set()  # do not wait out the poll
        await self._end()

    def register(self, step: ErasureStep) -> None:
        """A store added later erases its share of every later job."""
        self._steps.append(step)

    async def request(self, user_id: UUID) -> ErasureRecord:
        """Record the job (durable from here on), run its steps once, return where it stands."""
        now = utc_now()
        record = ErasureRecord(
            erasure_id=uuid.uuid4(),
            status="pending",
            steps={s.name: {"status": "pending", "attempts": 0} for s in self._steps},
            requested_at=now,
            next_attempt_at=now,
            completed_at=None,
            user_id=user_id,
        )
        async with self._database.transaction() as conn:
            await ErasureRepository(conn).add(user_id, record)
        metrics.ERASURES.labels("requested").inc()
        log.info("erasure_requested", erasure_id=str(record.erasure_id))
        record = await self._attempt(record)
        self._wake.set()  # the runner picks up what is left (a delayed sweep, a failed step)
        return record

    async def status(self, user_id: UUID) -> ErasureRecord | None:
        async with self._database.transaction() as conn:
            return await ErasureRepository(conn).of_user(user_id)

    async def run_due(self) -> int:
        """One pass over the jobs that are due; how many were attempted."""
        async with self._database.transaction() as conn:
            repo = ErasureRepository(conn)
            due = await repo.due(utc_now(), _BATCH)
            oldest = await repo.oldest_pending()
        age = (utc_now() - oldest).total_seconds() if oldest is not None else 0.0
        metrics.ERASURE_OLDEST_PENDING_AGE.set(max(age, 0.0))
        for record in due:
            await self._attempt(record)
        return len(due)

    async def _run(self) -> None:
        while not self.stopping:
            try:
                await self.run_due()
            except Exception as exc:  # the database may be down: try again at the next poll
                log.warning("erasure_pass_failed", error=type(exc).__name__)
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._poll_s)

    async def _attempt(self, record: ErasureRecord) -> ErasureRecord:
        async with self._running:
            if record.user_id is None:  # a newer erasure of the user took over
                record = replace(record, status="superseded", completed_at=utc_now())
            else:
                record = await self._run_steps(record, record.user_id)
            async with self._database.transaction() as conn:
                await ErasureRepository(conn).save(record)
        if record.status == "done":
            metrics.ERASURES.labels("done").inc()
            took = (record.completed_at or utc_now()) - record.requested_at
            log.info(
                "erasure_done",
                erasure_id=str(record.erasure_id),
                seconds=round(took.total_seconds(), 3),
            )
        return record

    async def _run_steps(self, record: ErasureRecord, user_id: UUID) -> ErasureRecord:
        now = utc_now()
        steps = {name: dict(state) for name, state in record.steps.items()}
        next_attempt: list[datetime] = []
        for step in self._steps:
            state = steps.setdefault(step.name, {"status": "pending", "attempts": 0})
            if state["status"] == "done":
                continue
            not_before = record.requested_at + timedelta(seconds=step.delay_s)
            if now < not_before:
                next_attempt.append(not_before)
                continue
            state["attempts"] = int(state["attempts"]) + 1
            started = time.perf_counter()
            try:
                await step.erase(user_id)
            except Exception as exc:  # recorded and retried; never the user id in the error
                metrics.ERASURE_STEP_FAILURES.labels(step.name).inc()
                state["lastError"] = type(exc).__name__
                next_attempt.append(now + timedelta(seconds=self._backoff(state["attempts"])))
                log.warning(
                    "erasure_step_failed",
                    erasure_id=str(record.erasure_id),
                    step=step.name,
                    attempts=state["attempts"],
                    error=type(exc).__name__,
                )
                continue
            state.update(status="done", doneAt=utc_now().isoformat(), lastError=None)
            state["seconds"] = round(time.perf_counter() - started, 4)
        done = all(state["status"] == "done" for state in steps.values())
        return replace(
            record,
            steps=steps,
            status="done" if done else "pending",
            next_attempt_at=min(next_attempt) if next_attempt else now,
            completed_at=utc_now() if done else None,
        )

    def _backoff(self, attempts: int) -> float:
        return float(min(0.5 * 2 ** (attempts - 1), self._max_backoff_s))


def erasure_document(record: ErasureRecord, user_id: UUID) -> dict[str, Any]:
    """GET /users/{id}/erasure and the 202 of DELETE /users/{id}."""
    return {
        "erasureId": record.erasure_id,
        "userId": user_id,
        "status": record.status,
        "requestedAt": record.requested_at,
        "completedAt": record.completed_at,
        "steps": [
            {
                "name": name,
                "status": state["status"],
                "attempts": state["attempts"],
                "lastError": state.get("lastError"),
                "doneAt": state.get("doneAt"),
            }
            for name, state in record.steps.items()
        ],
    }
