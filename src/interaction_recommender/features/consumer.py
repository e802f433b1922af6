"""The feature consumer: `interaction_events` → user features (snapshot, then Redis) →
`processed_features`. One poll is one micro-batch and one database transaction.

Exactly-once effect (docs/features.md): each user's features carry a watermark, the highest event
sequence applied; the relay publishes a user's events in sequence (= commit) order, so a message at
or below the watermark is a redelivery, a replay or a re-publish, and changes nothing. The snapshot
write is a compare-and-set on the features' version, under a per-user lock shared with erasure.
Offsets are committed by the consumer loop only after this handler returned, i.e. after the
snapshot transaction committed.

Poison messages (undecodable, unknown schema, an extraction error that repeats) are retried a
bounded number of times, then dead-lettered in the same transaction, and the partition moves on;
their sequence is remembered in the user's features so that a replay applies them exactly once.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import UUID

import structlog

from interaction_recommender import metrics
from interaction_recommender.bus.base import Bus, Message, Record
from interaction_recommender.bus.consumer import Retryable
from interaction_recommender.catalog.cache import CatalogCache
from interaction_recommender.deadletter.messages import claimed_identity
from interaction_recommender.deadletter.repository import DeadLetter
from interaction_recommender.deadletter.service import poison_letter
from interaction_recommender.deadletter.service import record as record_dead_letters
from interaction_recommender.events.messages import EventMessage, decode_event_message
from interaction_recommender.features.codec import encode
from interaction_recommender.features.document import feature_document
from interaction_recommender.features.extractor import apply_events, mark_dead_lettered
from interaction_recommender.features.repository import SnapshotRepository
from interaction_recommender.features.state import (
    DEFAULT_CONFIG,
    FeatureConfig,
    UserFeatures,
    new_features,
)
from interaction_recommender.features.store import FeatureStore
from interaction_recommender.storage.database import Database
from interaction_recommender.wire import dumps

__all__ = ["FEATURE_GROUP", "FeatureConsumer", "WriteConflict", "processed_message"]

log = structlog.get_logger(__name__)

FEATURE_GROUP = "interaction-recommender-features"
_REPAIR_BATCH = 500
PROCESSED_SCHEMA_VERSION = 1


class WriteConflict(Retryable):
    """Another writer updated a user's snapshot first; the batch is retried from the snapshot."""


@dataclass
class _Poison:
    record: Record
    error: BaseException
    attempts: int
    user_id: UUID | None
    sequence: int | None


class FeatureConsumer:
    def __init__(
        self,
        database: Database,
        store: FeatureStore,
        catalog: CatalogCache,
        bus: Bus,
        *,
        features_topic: str,
        dlq_topic: str,
        config: FeatureConfig = DEFAULT_CONFIG,
        attempts: int = 3,
        group: str = FEATURE_GROUP,
    ) -> None:
        self._group = group  # named in its dead letters: a replay goes to this group alone
        self._database = database
        self._store = store
        self._catalog = catalog
        self._bus = bus
        self._features_topic = features_topic
        self._dlq_topic = dlq_topic
        self._config = config
        self._attempts = attempts
        # Redis is the online copy of the snapshot: it may lag, never lose. A failed write is
        # recorded in `online_repairs` (durable, so another process finishes it after a crash)
        # and written again from the snapshot before a later batch; every new consumer looks.
        self._repair_due = True
        self.dead_lettered = 0
        self._record_of: dict[UUID, Record] = {}

    async def handle(self, records: list[Record]) -> None:
        if self._repair_due:
            await self._repair_online_store()
        events, undecodable = self._decode(records)
        self._record_of = {event.event_id: record for record, event in events}
        by_user: dict[UUID, list[EventMessage]] = defaultdict(list)
        for _, event in events:
            by_user[event.user_id].append(event)
        users = sorted(by_user)
        # An undecodable message changes no user's state: its userId and sequence are claims
        # (a foreign producer's sequence would otherwise raise the watermark for ever).
        claimed = sorted({p.user_id for p in undecodable if p.user_id is not None})
        poison: list[_Poison] = []

        updated: list[UserFeatures] = []
        unchanged: list[UserFeatures] = []
        applied: list[EventMessage] = []
        async with self._database.transaction() as conn:
            snapshot = SnapshotRepository(conn)
            await snapshot.lock_users(users)
            erased = await snapshot.erased(users + claimed)
            # Erased users' messages are dropped, bad ones included: nothing of theirs is kept.
            poison += [p for p in undecodable if p.user_id not in erased]
            stored = await snapshot.load_many([u for u in users if u not in erased])
            for user_id in users:
                if user_id in erased:
                    continue  # erased users' messages are dropped (a replay must not revive them)
                before = stored.get(user_id) or new_features(user_id)
                after, user_applied, user_poison = self._apply(before, by_user[user_id])
                poison += user_poison
                for item in user_poison:  # decoded, so its sequence is the relay's
                    if item.sequence is not None:
                        after = mark_dead_lettered(after, item.sequence, self._config)
                if after.version != before.version:
                    after.version = before.version + 1  # one write, one version step (the CAS)
                    updated.append(after)
                    applied += user_applied
                elif user_id in stored:
                    unchanged.append(before)
            encoded = {f.user_id: encode(f) for f in updated}  # once, for both stores
            if conflicts := await snapshot.save_many(updated, datetime.now(UTC), encoded):
                raise WriteConflict(f"{len(conflicts)} user(s) written concurrently; retrying")
            if poison:
                await record_dead_letters(
                    conn, [self._letter(p) for p in poison], dlq_topic=self._dlq_topic
                )
        self.dead_lettered += len(poison)
        metrics.DEAD_LETTERS.inc(len(poison))
        self._observe_freshness(applied)
        # Users whose messages were all repeats are written too: a process that died between
        # its snapshot commit and its Redis write left Redis behind, and its batch comes back
        # as repeats. The write is put-if-newer, so it is a no-op when Redis is current.
        await self._write_online(updated + unchanged, encoded)
        await self._publish(updated)

    def _decode(
        self, records: Sequence[Record]
    ) -> tuple[list[tuple[Record, EventMessage]], list[_Poison]]:
        events: list[tuple[Record, EventMessage]] = []
        poison: list[_Poison] = []
        for record in records:
            try:
                if record.value is None:
                    raise ValueError("a message without a value")
                events.append((record, decode_event_message(record.value)))
            except ValueError as exc:  # pydantic's ValidationError is a ValueError
                # Decoding is deterministic: retrying cannot help, so it counts as one attempt.
                user_id, sequence = claimed_identity(record)
                poison.append(_Poison(record, exc, 1, user_id, sequence))
        return events, poison

    def _apply(
        self, features: UserFeatures, events: list[EventMessage]
    ) -> tuple[UserFeatures, list[EventMessage], list[_Poison]]:
        """Apply a user's events; an event whose extraction keeps failing becomes poison and the
        others still apply."""
        pairs = [(e, self._catalog.get(e.movie_id) if e.movie_id else None) for e in events]
        try:
            after, applied = apply_events(features, pairs, self._config)
            return after, applied, []
        except Exception:  # find the culprit(s) one event at a time
            # no user id in logs: they cannot be erased (docs/features.md, erasure)
            log.warning("feature_extraction_failed", events=len(events))
        poison: list[_Poison] = []
        applied_all: list[EventMessage] = []
        for pair in pairs:
            for attempt in range(1, self._attempts + 1):
                try:
                    features, applied = apply_events(features, [pair], self._config)
                    applied_all += applied
                    break
                except Exception as exc:
                    if attempt == self._attempts:
                        event = pair[0]
                        record = self._record_of[event.event_id]
                        poison.append(_Poison(record, exc, attempt, event.user_id, event.sequence))
        return features, applied_all, poison

    def _letter(self, poison: _Poison) -> DeadLetter:
        return poison_letter(self._group, poison.record, poison.error, poison.attempts)

    async def _write_online(
        self, features: list[UserFeatures], encoded: dict[UUID, bytes] | None = None
    ) -> None:
        if not features:
            return
        try:
            await self._store.put_many(features, encoded)
        except Exception as exc:  # the snapshot has them: remember to write them again
            metrics.ONLINE_STORE_FAILURES.inc()
            log.warning(
                "online_feature_store_write_failed", error=type(exc).__name__, users=len(features)
            )
            # If this fails too the handler raises and the batch comes again (as repeats,
            # which are written to Redis once more).
            async with self._database.transaction() as conn:
                await SnapshotRepository(conn).behind_online(
                    [f.user_id for f in features], datetime.now(UTC)
                )
            self._repair_due = True

    async def _repair_online_store(self) -> None:
        """Write the users whose Redis write failed (here or in a process that died) again, from
        their snapshot. Best effort: whatever fails stays recorded for the next batch."""
        try:
            read_at = datetime.now(UTC)
            async with self._database.transaction() as conn:
                snapshot = SnapshotRepository(conn)
                users = await snapshot.to_repair(_REPAIR_BATCH)
                stored = await snapshot.load_many(users) if users else {}
            if stored:
                await self._store.put_many(list(stored.values()))
            if users:
                async with self._database.transaction() as conn:
                    await SnapshotRepository(conn).repaired(users, read_at)
                log.info("online_feature_store_repaired", users=len(users))
            self._repair_due = len(users) == _REPAIR_BATCH
        except Exception as exc:
            log.warning("online_feature_store_repair_failed", error=type(exc).__name__)

    async def _publish(self, updated: list[UserFeatures]) -> None:
        """`processed_features`: the latest features of each updated user (a state topic: a lost
        message is superseded by the next one, so this is best effort, counted when it fails)."""
        if not updated:
            return
        try:
            await self._bus.publish([processed_message(self._features_topic, f) for f in updated])
        except Exception as exc:  # MessageRejected (too large) included: the others were sent
            metrics.FEATURE_PUBLISH_FAILURES.inc()
            log.warning("processed_features_publish_failed", error=type(exc).__name__)

    @staticmethod
    def _observe_freshness(applied: list[EventMessage]) -> None:
        now = time.time()
        for event in applied:
            metrics.FEATURE_FRESHNESS.observe(max(now - event.server_timestamp.timestamp(), 0.0))


def processed_message(topic: str, features: UserFeatures) -> Message:
    """The `processed_features` message of a user (docs/topics.md). Every collection in it is
    capped (FeatureConfig), so its size is bounded: tests/outbox/test_oversized.py checks that
    the heaviest possible user fits in the default KAFKA_MAX_REQUEST_SIZE."""
    body = {
        "schemaVersion": PROCESSED_SCHEMA_VERSION,
        "userId": features.user_id,
        "version": features.version,
        "features": feature_document(features),
    }
    return Message(topic, str(features.user_id).encode(), dumps(body))
