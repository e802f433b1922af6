"""Where every fault test ends: the pipeline drained, then every acknowledged event accounted for.

1. Drained: no unsent outbox row, and every consumer group of `interaction_events` has committed
   up to the end of every partition.
2. Stored exactly once: one `raw_events` row per acknowledged requestId, carrying the eventId the
   client was answered, and no row for a requestId never sent.
3. Published at least once: each acknowledged event is on `interaction_events` with its own
   requestId, and per user in increasing sequence apart from repeats (docs/topics.md).
4. Features: each user's snapshot (Postgres), online copy (Redis, both keys) and API document equal
   a rebuild from the stored events by the service's own pure function (`build_features`, as a
   refresh does), apart from the version, which counts writes; the Redis copy and the API carry
   the snapshot's version (never an older one).

Two kinds of events are exempt, for the scenarios that make them:
- ``erased_users``: their events are acknowledged but never stored, and nothing about them is left
  in Postgres or Redis (their keys hold the tombstone or nothing; the API answers 404);
- ``set_aside`` (requestIds): stored exactly once, listed by GET /admin/dlq as set aside (the
  outbox rows the bus refused for good), never on the topic, and left out of the rebuild.
Any other set-aside row or dead letter fails, unless the caller expects that many dead letters of a
foreign producer's messages.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import asyncpg
import httpx
import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from pydantic import TypeAdapter
from redis.asyncio import Redis

from interaction_recommender.catalog.cache import CatalogCache
from interaction_recommender.events.repository import all_event_messages
from interaction_recommender.features.codec import decode
from interaction_recommender.features.document import feature_document
from interaction_recommender.features.extractor import build_features
from interaction_recommender.features.profile import encode_profile, profile_of
from interaction_recommender.features.repository import SnapshotRepository
from interaction_recommender.features.state import UserFeatures
from interaction_recommender.settings import Settings
from interaction_recommender.storage.database import Database
from tests.faults.load import Traffic
from tests.faults.platform import Platform

__all__ = [
    "OrderViolation",
    "Reconciliation",
    "consumer_lag",
    "dumps_report",
    "outbox_backlog",
    "read_topic",
    "reconcile",
    "wait_drained",
]

DRAIN_TIMEOUT_S = 180.0
_KAFKA_READ_TIMEOUT_S = 30.0
_VERSION_DIGITS = 20  # features/store.py: the value starts with the version, 20 ASCII digits
_TOMBSTONE = b"erased"
_EXAMPLES = 5
_SHOWN = 300  # characters of a field's value in a failure message
_DOCUMENT = TypeAdapter(dict[str, Any])


class OrderViolation(AssertionError):
    """A user's new event reached the topic after a later one: the consumer takes it for a
    repeat, so its effect is lost (a test may name the defect that causes it)."""


@dataclass(frozen=True)
class StoredRow:
    request_id: str
    event_id: str
    user_id: str
    sequence: int


@dataclass
class Reconciliation:
    """What the reconciliation counted (printed by the tests, for the record)."""

    acknowledged: int = 0
    stored: int = 0
    on_topic: int = 0
    messages: int = 0
    users_checked: int = 0
    redis_missing_before_read: int = 0
    drained_after_s: float = 0.0


# --- 1. drained ----------------------------------------------------------------------------------
async def outbox_backlog(dsn: str) -> int:
    conn = await asyncpg.connect(dsn, timeout=5)
    try:
        return int(
            await conn.fetchval(
                "SELECT count(*) FROM outbox WHERE sent_at IS NULL AND set_aside_at IS NULL"
            )
        )
    finally:
        await conn.close()


async def _end_offsets(consumer: AIOKafkaConsumer, topic: str) -> dict[TopicPartition, int]:
    """Each partition's end as a fetch reports it (its high watermark). The test broker's
    ListOffsets can answer the first offset of the last batch instead of the end, so
    `end_offsets` only says where to fetch from."""
    await consumer.topics()  # refreshes the metadata
    tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
    if not tps:
        return {}
    listed = await consumer.end_offsets(tps)
    consumer.assign(tps)
    for tp in tps:
        consumer.seek(tp, max(listed[tp] - 1, 0))
    ends: dict[TopicPartition, int] = {}
    deadline = time.monotonic() + _KAFKA_READ_TIMEOUT_S
    while len(ends) < len(tps):
        assert time.monotonic() < deadline, f"no high watermark of {topic} after a fetch"
        await consumer.getmany(timeout_ms=200)
        for tp in tps:
            highwater = consumer.highwater(tp)
            if highwater is not None:
                ends[tp] = highwater
    return ends


async def consumer_lag(bootstrap: str, topic: str, groups: Iterable[str]) -> dict[str, int]:
    """group -> messages of ``topic`` past the group's committed offsets (all partitions)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await consumer.start()
    await admin.start()
    try:
        ends = await _end_offsets(consumer, topic)
        lags = {}
        for group in groups:
            committed = await admin.list_consumer_group_offsets(group, partitions=list(ends))
            lags[group] = sum(
                end - (committed[tp].offset if tp in committed else 0) for tp, end in ends.items()
            )
        return lags
    finally:
        await admin.close()
        await consumer.stop()


async def read_topic(bootstrap: str, topic: str) -> list[dict[str, Any]]:
    """Every message of ``topic`` (decoded JSON; tombstones left out), read up to each
    partition's high watermark (see _end_offsets for why not tests/fixtures/bus.py's reader)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        await consumer.topics()
        tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        if not tps:
            return []
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        messages: list[dict[str, Any]] = []
        pending = set(tps)
        deadline = time.monotonic() + _KAFKA_READ_TIMEOUT_S
        while pending:
            assert time.monotonic() < deadline, f"{topic} not read within {_KAFKA_READ_TIMEOUT_S}s"
            batches = await consumer.getmany(*pending, timeout_ms=500, max_records=5000)
            for records in batches.values():
                messages += [m for m in map(_our_event, records) if m is not None]
            for tp in list(pending):
                highwater = consumer.highwater(tp)
                if highwater is not None and await consumer.position(tp) >= highwater:
                    pending.discard(tp)
        return messages
    finally:
        await consumer.stop()


def _our_event(record: Any) -> dict[str, Any] | None:
    """A message the relay published (decoded), or None: a tombstone, or a foreign producer's
    message (test_foreign_message.py), which is no event of ours."""
    try:
        value = orjson.loads(record.value) if record.value is not None else None
    except orjson.JSONDecodeError:
        return None
    if not isinstance(value, dict) or not {"eventId", "requestId", "sequence"} <= value.keys():
        return None
    return value


async def wait_drained(platform: Platform, timeout: float = DRAIN_TIMEOUT_S) -> float:
    """Seconds until the outbox is empty and every consumer group caught up with the topic."""
    settings = platform.settings()
    topic = platform.topics.interaction_events
    groups = [
        settings.features_consumer_group,
        settings.catalog_consumer_group,
        settings.attribution_consumer_group,
    ]
    started = time.monotonic()
    while True:
        backlog = await outbox_backlog(platform.postgres.dsn)
        lags = await consumer_lag(settings.kafka_bootstrap_servers, topic, groups)
        if backlog == 0 and not any(lags.values()):
            return time.monotonic() - started
        assert time.monotonic() - started < timeout, (
            f"not drained after {timeout}s: outbox backlog {backlog}, consumer lag {lags}"
        )
        await asyncio.sleep(0.5)


# --- 2. stored exactly once ----------------------------------------------------------------------
async def _stored_rows(dsn: str) -> dict[str, list[StoredRow]]:
    conn = await asyncpg.connect(dsn, timeout=5)
    try:
        rows = await conn.fetch("SELECT request_id, event_id, user_id, sequence FROM raw_events")
    finally:
        await conn.close()
    stored: dict[str, list[StoredRow]] = defaultdict(list)
    for row in rows:
        item = StoredRow(
            str(row["request_id"]), str(row["event_id"]), str(row["user_id"]), row["sequence"]
        )
        stored[item.request_id].append(item)
    return stored


def _check_stored(
    traffic: Traffic,
    stored: Mapping[str, list[StoredRow]],
    erased_users: frozenset[str],
) -> None:
    acknowledged = traffic.acknowledged
    multiple = {rid: rows for rid, rows in stored.items() if len(rows) != 1}
    assert not multiple, f"requestIds with several rows: {list(multiple.items())[:_EXAMPLES]}"
    unexpected = sorted(stored.keys() - traffic.sent.keys())
    assert not unexpected, f"rows of requestIds never sent: {unexpected[:_EXAMPLES]}"
    of_erased = sorted(rid for rid in stored if traffic.sent[rid].user_id in erased_users)
    assert not of_erased, f"rows of erased users' events: {of_erased[:_EXAMPLES]}"
    kept = {rid for rid in acknowledged if traffic.sent[rid].user_id not in erased_users}
    missing = sorted(kept - stored.keys())
    assert not missing, (
        f"{len(missing)}/{len(kept)} acknowledged events have no row, e.g. {missing[:_EXAMPLES]}"
    )
    wrong_id = {
        rid: (acknowledged[rid], stored[rid][0].event_id)
        for rid in kept
        if acknowledged[rid] != stored[rid][0].event_id
    }
    assert not wrong_id, f"answered eventId != stored eventId: {list(wrong_id.items())[:_EXAMPLES]}"


# --- 3. on the topic -----------------------------------------------------------------------------
async def _check_topic(
    bootstrap: str,
    topic: str,
    published: dict[str, str],
    set_aside: dict[str, str],
) -> int:
    """``published``/``set_aside``: requestId -> eventId. Returns the messages read."""
    seen: dict[str, set[str]] = defaultdict(set)
    messages = await read_topic(bootstrap, topic)
    for message in messages:
        seen[str(message["eventId"])].add(str(message["requestId"]))
    absent = sorted(rid for rid, eid in published.items() if eid not in seen)
    assert not absent, (
        f"{len(absent)}/{len(published)} acknowledged events are not on {topic}, "
        f"e.g. {absent[:_EXAMPLES]}"
    )
    mismatched = {rid: seen[eid] for rid, eid in published.items() if seen[eid] != {rid}}
    assert not mismatched, (
        f"messages with another requestId: {list(mismatched.items())[:_EXAMPLES]}"
    )
    leaked = sorted(rid for rid, eid in set_aside.items() if eid in seen)
    assert not leaked, f"set-aside events on {topic}: {leaked[:_EXAMPLES]}"
    disorder = _order_violations(messages)
    if disorder:
        raise OrderViolation(
            f"{len(disorder)} messages of {topic} break the per-user order (docs/topics.md: per "
            f"user, increasing sequence apart from repeats): {disorder[:_EXAMPLES]}"
        )
    return len(messages)


def _order_violations(messages: Iterable[Mapping[str, Any]]) -> list[str]:
    """Messages (in partition order; a user's all share one partition) whose sequence is below
    one already on the topic for the same user without being a repeat: the consumer takes such
    a message for a repeat and skips it, so its event never reaches the features."""
    highest: dict[str, int] = {}
    seen: dict[str, set[int]] = defaultdict(set)
    violations = []
    for message in messages:
        user, sequence = str(message["userId"]), int(message["sequence"])
        if sequence < highest.get(user, sequence) and sequence not in seen[user]:
            violations.append(f"user {user}: sequence {sequence} after {highest[user]}")
        seen[user].add(sequence)
        highest[user] = max(highest.get(user, sequence), sequence)
    return violations


async def _check_listed(
    platform: Platform,
    client: httpx.AsyncClient,
    set_aside: Mapping[str, str],
    foreign_dead_letters: int,
) -> None:
    """GET /admin/dlq lists the set-aside events (``set_aside``: requestId -> eventId) among the
    outbox rows set aside for the events topic, and nothing else; and ``foreign_dead_letters``
    dead letters (a consumer could not process them), no more, no fewer."""
    response = await client.get(
        "/api/v1/admin/dlq", params={"limit": 1000}, headers=platform.admin_headers
    )
    assert response.status_code == 200, response.text[:300]
    listing = response.json()
    assert listing["pendingCount"] == foreign_dead_letters, (
        f"{listing['pendingCount']} dead letters, {foreign_dead_letters} expected: "
        f"{listing['deadLetters'][:_EXAMPLES]}"
    )
    topic = platform.topics.interaction_events
    ids = [row["outboxId"] for row in listing["setAside"] if row["topic"] == topic]
    conn = await asyncpg.connect(platform.postgres.dsn, timeout=5)
    try:
        rows = await conn.fetch("SELECT payload FROM outbox WHERE id = ANY($1::bigint[])", ids)
    finally:
        await conn.close()
    listed = {str(orjson.loads(row["payload"])["eventId"]) for row in rows}
    wanted = set(set_aside.values())
    assert listed == wanted, (
        f"set aside but not expected: {sorted(listed - wanted)[:_EXAMPLES]}; "
        f"expected but not listed: {sorted(wanted - listed)[:_EXAMPLES]}"
    )


# --- 4. features ---------------------------------------------------------------------------------
def _without_version(features: UserFeatures) -> dict[str, Any]:
    return {
        f.name: getattr(features, f.name)
        for f in dataclasses.fields(features)
        if f.name != "version"
    }


def _differences(actual: UserFeatures, expected: UserFeatures) -> list[str]:
    got, want = _without_version(actual), _without_version(expected)
    return [name for name in want if got[name] != want[name]]


def _show(actual: UserFeatures, expected: UserFeatures) -> str:
    """The differing fields of one user, got vs want (abridged), for a failure message."""
    got, want = _without_version(actual), _without_version(expected)
    return "; ".join(
        f"{name}: {str(got[name])[:_SHOWN]} != {str(want[name])[:_SHOWN]}"
        for name in _differences(actual, expected)
    )


def _api_document(features: UserFeatures) -> dict[str, Any]:
    """The features document as GET /features renders it (its response model's field is a
    ``dict[str, Any]``, serialised by pydantic), without the genre scores' values: they are
    decayed to the instant of the request (their genres are compared)."""
    document: dict[str, Any] = _DOCUMENT.dump_python(feature_document(features), mode="json")
    document["genreAffinity"] = sorted(document["genreAffinity"])
    return document


async def _rebuilds(
    settings: Settings, users: set[UUID], left_out: set[UUID]
) -> tuple[dict[UUID, UserFeatures], dict[UUID, UserFeatures]]:
    """(rebuilt from the stored events, the stored snapshot) per user. ``left_out``: eventIds
    the rebuild skips (set aside: never published, never applied)."""
    database = Database(settings)
    try:
        catalog = CatalogCache(database, poll_s=1.0)
        await catalog.refresh()
        async with database.transaction() as conn:
            events = await all_event_messages(conn)
            snapshots = await SnapshotRepository(conn).load_many(sorted(users))
    finally:
        await database.dispose()
    by_user = defaultdict(list)
    for event in events:
        if event.event_id not in left_out:
            movie = catalog.get(event.movie_id) if event.movie_id else None
            by_user[event.user_id].append((event, movie))
    rebuilt = {user: build_features(user, by_user[user]) for user in users}
    return rebuilt, snapshots


async def _check_features(
    platform: Platform, client: httpx.AsyncClient, users: set[UUID], left_out: set[UUID]
) -> int:
    """Returns how many users had no Redis copy before the API read them."""
    settings = platform.settings()
    rebuilt, snapshots = await _rebuilds(settings, users, left_out)

    without_snapshot = sorted(str(u) for u in users if u not in snapshots)
    assert not without_snapshot, f"users without a snapshot: {without_snapshot[:_EXAMPLES]}"
    snapshot_wrong = {
        str(u): _differences(snapshots[u], rebuilt[u])
        for u in sorted(users)
        if _differences(snapshots[u], rebuilt[u])
    }
    if snapshot_wrong:
        first = UUID(next(iter(snapshot_wrong)))
        raise AssertionError(
            f"{len(snapshot_wrong)}/{len(users)} snapshots differ from the rebuild (fields): "
            f"{list(snapshot_wrong.items())[:_EXAMPLES]}; the first, snapshot != rebuild: "
            f"{_show(snapshots[first], rebuilt[first])}"
        )
    for user in users:
        rebuilt[user].version = snapshots[user].version  # the one field a rebuild cannot know

    redis = Redis.from_url(platform.redis.url)
    try:
        missing = await _check_redis(redis, settings.redis_key_prefix, rebuilt, required=False)
        api_wrong = {}
        for user in sorted(users):
            response = await client.get(f"/api/v1/features/{user}")
            assert response.status_code == 200, (user, response.status_code, response.text)
            body = response.json()
            document = body["features"]
            document["genreAffinity"] = sorted(document["genreAffinity"])
            expected = _api_document(rebuilt[user])
            if body["version"] != rebuilt[user].version or document != expected:
                fields = [k for k in expected if document.get(k) != expected[k]]
                api_wrong[str(user)] = (body["version"], rebuilt[user].version, fields)
        assert not api_wrong, (
            f"{len(api_wrong)}/{len(users)} users' GET /features differ "
            f"(version served, snapshot version, fields): {list(api_wrong.items())[:_EXAMPLES]}"
        )
        # A read repairs a missing online copy from the snapshot: now every user has one.
        await _check_redis(redis, settings.redis_key_prefix, rebuilt, required=True)
    finally:
        await redis.aclose()
    return missing


async def _check_redis(
    redis: Redis, prefix: str, expected: Mapping[UUID, UserFeatures], *, required: bool
) -> int:
    """Both keys of each user hold the snapshot's version and content (a missing key is allowed
    unless ``required``: Redis may have lost it). Returns how many features keys were missing."""
    users = sorted(expected)
    features = await redis.mget([f"{prefix}features:{u}" for u in users])
    profiles = await redis.mget([f"{prefix}profile:{u}" for u in users])
    missing = 0
    wrong: dict[str, str] = {}
    for user, value, profile in zip(users, features, profiles, strict=True):
        want = expected[user]
        version = b"%020d" % want.version
        if value is None or profile is None:
            missing += value is None
            if required:
                wrong[str(user)] = "features or profile key missing"
            continue
        assert isinstance(value, bytes) and isinstance(profile, bytes)  # no decode_responses
        if value[:_VERSION_DIGITS] != version:
            wrong[str(user)] = f"features version {value[:_VERSION_DIGITS]!r} != {version!r}"
        elif _differences(online := decode(value[_VERSION_DIGITS:]), want):
            wrong[str(user)] = f"features differ, Redis != snapshot: {_show(online, want)}"
        elif profile != version + encode_profile(profile_of(want)):
            wrong[str(user)] = f"profile differs (version {profile[:_VERSION_DIGITS]!r})"
    assert not wrong, (
        f"{len(wrong)}/{len(users)} users' Redis copies are wrong: "
        f"{list(wrong.items())[:_EXAMPLES]}"
    )
    return missing


# --- erased users --------------------------------------------------------------------------------
_USER_TABLES = ("raw_events", "user_features", "dead_letters", "impressions", "feedback")


async def _check_erased(
    platform: Platform, client: httpx.AsyncClient, erased_users: frozenset[str]
) -> None:
    if not erased_users:
        return
    ids = [UUID(u) for u in sorted(erased_users)]
    conn = await asyncpg.connect(platform.postgres.dsn, timeout=5)
    try:
        for table in _USER_TABLES:
            left = await conn.fetchval(
                f"SELECT count(*) FROM {table} WHERE user_id = ANY($1::uuid[])", ids
            )
            assert left == 0, f"{left} rows of erased users left in {table}"
        pending = await conn.fetchval(
            "SELECT count(*) FROM outbox WHERE sent_at IS NULL AND message_key = ANY($1::text[])",
            sorted(erased_users),
        )
        assert pending == 0, f"{pending} unsent outbox messages keyed by erased users"
    finally:
        await conn.close()
    prefix = platform.settings().redis_key_prefix
    redis = Redis.from_url(platform.redis.url)
    try:
        for user in sorted(erased_users):
            for key in (f"{prefix}features:{user}", f"{prefix}profile:{user}"):
                value = await redis.get(key)
                assert value in (None, _TOMBSTONE), f"Redis {key} holds {value[:40]!r}"
    finally:
        await redis.aclose()
    for user in sorted(erased_users):
        response = await client.get(f"/api/v1/features/{user}")
        assert response.status_code == 404, (user, response.status_code, response.text)


# --- all of it -----------------------------------------------------------------------------------
async def reconcile(
    platform: Platform,
    client: httpx.AsyncClient,
    traffic: Traffic,
    *,
    erased_users: Iterable[str] = (),
    set_aside: Iterable[str] = (),
    foreign_dead_letters: int = 0,
    server_killed: bool = False,
    drain_timeout_s: float = DRAIN_TIMEOUT_S,
) -> Reconciliation:
    """The checks of the module docstring; ``client`` talks to a running `recommender serve`.
    ``foreign_dead_letters``: dead letters of messages that are no stored event (a foreign
    producer's); any other dead letter fails. ``server_killed``: the service itself was down
    for a while (requests without an answer are then expected, see Traffic.check)."""
    erased = frozenset(erased_users)
    aside = frozenset(set_aside)
    traffic.check(server_killed=server_killed)
    report = Reconciliation(acknowledged=traffic.acknowledged_count)
    report.drained_after_s = await wait_drained(platform, drain_timeout_s)

    stored = await _stored_rows(platform.postgres.dsn)
    report.stored = sum(len(rows) for rows in stored.values())
    _check_stored(traffic, stored, erased)

    acknowledged = traffic.acknowledged
    kept = {
        rid: eid for rid, eid in acknowledged.items() if traffic.sent[rid].user_id not in erased
    }
    published = {rid: eid for rid, eid in kept.items() if rid not in aside}
    aside_ids = {rid: eid for rid, eid in kept.items() if rid in aside}
    unacknowledged = aside - kept.keys()
    assert not unacknowledged, f"set-aside requestIds never acknowledged: {unacknowledged}"
    report.messages = await _check_topic(
        platform.settings().kafka_bootstrap_servers,
        platform.topics.interaction_events,
        published,
        aside_ids,
    )
    report.on_topic = len(published)
    await _check_listed(platform, client, aside_ids, foreign_dead_letters)

    users = {UUID(traffic.sent[rid].user_id) for rid in published}
    report.users_checked = len(users)
    left_out = {UUID(eid) for eid in aside_ids.values()}
    report.redis_missing_before_read = await _check_features(platform, client, users, left_out)
    await _check_erased(platform, client, erased)
    return report


def dumps_report(report: Reconciliation) -> str:
    return orjson.dumps(dataclasses.asdict(report)).decode()
