"""`recommender worker` scales out by Kafka partitions, and a crashed worker's partitions fail over.

One API process (in-process, ingest only: ENABLE_CONSUMERS=false) and two `recommender worker`
subprocesses on the same schema, topic prefix, Redis prefix and consumer groups (features and
catalog placeholders); `interaction_events` has 4 partitions, 200 users spread over them.

What the test proves, step by step:

1. Worker 1 alone joins both groups and processes every user's first event (all 4 partitions).
2. Worker 2 joins: the features and the catalog groups each have exactly these two members.
3. The two workers SHARE the partitions, 2 + 2, each processing its own: worker 1 is frozen
   (SIGSTOP, shorter than the session timeout, so the group does not rebalance), one event per
   user is posted, and exactly the users of 2 partitions are brought up to date (by worker 2, the
   only running consumer) while the users of the other 2 do not move at all; after SIGCONT they
   are (by worker 1). The same with worker 2 frozen gives the complementary 2 partitions.
4. A client keeps posting events for the same users through the API at a steady pace; worker 1
   is SIGKILLed. Within 60 s the groups' only member is worker 2, and events posted after the kill
   are applied on all 4 partitions, i.e. the survivor owns them all (worker 1 is dead).
5. Once every user's features (GET /features) count every event that got a 200, the online copy
   (Redis) equals the snapshot, and for every user the snapshot's feature document equals a
   refresh from the raw events (POST /refresh?days_back=365; the refresh bumps the version only).
6. The survivor stops cleanly on SIGTERM.

How ownership is observed, and why (Tansu 0.6.0, aiokafka 0.14.0): `describe_consumer_groups`
works against Tansu for the group state and the member ids, but every member comes back with an
EMPTY `member_assignment` (and empty client id and host), so Tansu cannot tell who owns which
partition. `list_consumer_group_offsets` fails outright: the broker's OffsetFetch answer cannot be
decoded (`struct.error: unpack requires a buffer of 4 bytes`, then the connection is closed). The
workers log nothing per batch (aiokafka is at WARNING), so their logs cannot tell either. Hence
the membership comes from the group description (members are told apart by joining one at a
time) and the partition ownership from behaviour: which users' features move while the other
worker is frozen or dead, the partition of a user being murmur2(userId) % 4, as the producer
computes it. Tansu's rebalance after a SIGKILL works (see the timings this test prints: the dead
member leaves the group about session timeout + ~4 s after the kill).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import random
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError
from aiokafka.partitioner import murmur2

from interaction_recommender.features.document import feature_document
from interaction_recommender.features.repository import SnapshotRepository
from interaction_recommender.features.state import UserFeatures
from tests.fixtures.app import Service, platform_settings, run_service
from tests.fixtures.factories import event_payload
from tests.fixtures.server import platform_env
from tests.fixtures.services import KafkaBroker

pytestmark = [pytest.mark.slow, pytest.mark.kafka, pytest.mark.timeout(240)]

USERS = 200
MOVIES = 24
PARTITIONS = 4  # KAFKA_TOPIC_PARTITIONS' default
SESSION_TIMEOUT_MS = 6000
# Heartbeats go every session/3 = 2 s: a freeze of at most 3 s stays clear of the 6 s timeout.
PAUSE_MAX_S = 3.0
WORKER_START_S = 60.0  # process start, then the group join (~3-5 s each on Tansu)
JOIN_S = 45.0
APPLY_S = 30.0  # posted -> applied, with every worker running
PROBE_BUDGET_S = 60.0
FAILOVER_S = 60.0
STOP_S = 20.0
POST_INTERVAL_S = 0.01
LOG_TAIL_LINES = 60

ALL_PARTITIONS = frozenset(range(PARTITIONS))


def partition_of(user: uuid.UUID) -> int:
    """The partition the relay's producer picks for a user's events (aiokafka's default
    partitioner: murmur2 of the key, the user id as text)."""
    return (murmur2(str(user).encode()) & 0x7FFFFFFF) % PARTITIONS


# --- a `recommender worker` subprocess ---------------------------------------------------------
def _worker_command() -> list[str]:
    script = Path(sys.executable).with_name("recommender")
    if script.exists():
        return [str(script), "worker"]
    return [sys.executable, "-m", "interaction_recommender.cli", "worker"]


class WorkerProcess:
    """`recommender worker` with its output in a log file. It has no HTTP: readiness is its
    `worker_started` log line (then the group join, seen from the broker)."""

    def __init__(self, name: str, env: dict[str, str], log_path: Path) -> None:
        self.name = name
        self._env = env
        self.log_path = log_path
        self._process: subprocess.Popen[bytes] | None = None
        self._paused = False

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def exit_code(self) -> int | None:
        return None if self._process is None else self._process.poll()

    def start(self) -> None:
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                _worker_command(),
                env=self._env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def log_tail(self) -> str:
        lines = self.log_text().splitlines()
        return "\n".join(lines[-LOG_TAIL_LINES:]) or "(empty log)"

    async def wait_logged(self, text: str, timeout: float) -> float:
        started = time.monotonic()
        while text not in self.log_text():
            assert self.running, f"{self.name} exited with {self.exit_code} before {text!r}"
            assert time.monotonic() - started < timeout, f"{self.name}: no {text!r} in {timeout}s"
            await asyncio.sleep(0.1)
        return time.monotonic() - started

    def pause(self) -> None:
        assert self._process is not None and self.running, f"{self.name} is not running"
        self._process.send_signal(signal.SIGSTOP)
        self._paused = True

    def resume(self) -> None:
        if self._process is not None and self._paused:
            self._process.send_signal(signal.SIGCONT)
            self._paused = False

    async def kill(self) -> None:
        """SIGKILL and reap: no shutdown hook runs, the group is not left."""
        assert self._process is not None and self.running, f"{self.name} died before the kill"
        self._process.send_signal(signal.SIGKILL)
        assert await self._wait_exit(10.0), f"{self.name} survived SIGKILL for 10 s"

    async def stop(self) -> None:
        """SIGTERM, wait, SIGKILL if it does not exit. Never raises."""
        if self._process is None or self._process.poll() is not None:
            return
        self.resume()
        self._process.send_signal(signal.SIGTERM)
        if await self._wait_exit(STOP_S):
            return
        print(f"{self.name} ignored SIGTERM for {STOP_S}s; killing it")
        self._process.kill()
        await self._wait_exit(10.0)

    async def _wait_exit(self, timeout: float) -> bool:
        assert self._process is not None
        deadline = time.monotonic() + timeout
        while self._process.poll() is None:
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.05)
        return True


def worker_env(schema: str, kafka: KafkaBroker, redis_url: str, tmp_path: Path) -> dict[str, str]:
    """The same settings as the in-process API's `platform_settings`, as environment."""
    return {
        **platform_env(schema, kafka, redis_url, tmp_path),
        "REDIS_KEY_PREFIX": f"{schema}:",
        "FEATURES_CONSUMER_GROUP": f"{schema}-features",
        "CATALOG_CONSUMER_GROUP": f"{schema}-catalog",
        "KAFKA_SESSION_TIMEOUT_MS": str(SESSION_TIMEOUT_MS),
        "AUTO_MIGRATE": "true",
        "LOG_JSON": "false",
        "DEMO_DATA": "false",
    }


# --- the consumer groups, as the broker describes them ------------------------------------------
async def group_members(admin: AIOKafkaAdminClient, group: str) -> tuple[str, frozenset[str]]:
    """(state, member ids); Tansu leaves the members' assignments empty (module docstring)."""
    try:
        (response,) = await admin.describe_consumer_groups([group])
    except KafkaError as exc:
        return f"unavailable ({type(exc).__name__})", frozenset()
    (described,) = response.groups
    error_code, _, state, _, _, members = described[:6]
    if error_code:
        return f"error {error_code}", frozenset()
    return str(state), frozenset(str(member[0]) for member in members)


async def eventually(
    what: str, check: Callable[[], Awaitable[bool]], timeout: float, status: Callable[[], str]
) -> float:
    """Seconds until ``check`` held; fails after ``timeout`` with ``status()``."""
    started = time.monotonic()
    while not await check():
        elapsed = time.monotonic() - started
        assert elapsed < timeout, f"{what}: not within {timeout}s; {status()}"
        await asyncio.sleep(0.1)
    return time.monotonic() - started


async def wait_for_members(
    admin: AIOKafkaAdminClient, group: str, expected: int, *, including: frozenset[str]
) -> frozenset[str]:
    seen: tuple[str, frozenset[str]] = ("not described yet", frozenset())

    async def joined() -> bool:
        nonlocal seen
        seen = await group_members(admin, group)
        state, members = seen
        return state == "Stable" and len(members) == expected and including <= members

    await eventually(f"{expected} member(s) in {group}", joined, JOIN_S, lambda: str(seen))
    return seen[1]


# --- traffic through the API -------------------------------------------------------------------
class Traffic:
    """Events for a fixed set of users through the API; counts each user's accepted events."""

    def __init__(self, api: Service, users: list[uuid.UUID], movies: list[uuid.UUID]) -> None:
        self._api = api
        self._users = users
        self._movies = movies
        self._rng = random.Random(20261126)
        self.accepted: Counter[uuid.UUID] = Counter()
        self.posted = 0
        self.in_flight: uuid.UUID | None = None
        self.failures: list[str] = []

    def event(self, user: uuid.UUID) -> tuple[str, dict[str, Any]]:
        rng = self._rng
        kind = rng.choices(["watch", "rating", "favorite", "search"], [5, 2, 2, 1])[0]
        movie = str(rng.choice(self._movies))
        metadata: dict[str, Any]
        if kind == "watch":
            metadata = {
                "watchDuration": rng.randrange(30, 7200),
                "progressPercent": rng.choice([3.0, 42.5, 88.0, 97.5, 100.0]),
                "sessionId": str(uuid.uuid4()),
                "device": rng.choice(["tv", "web", "mobile"]),
                "quality": rng.choice(["4k", "1080p", "720p"]),
            }
        elif kind == "rating":
            metadata = {"rating": rng.choice([1.0, 2.5, 3.5, 4.0, 4.5, 5.0])}
        elif kind == "favorite":
            metadata = {"action": rng.choice(["add", "add", "remove"])}
        else:
            metadata = {"query": rng.choice(["space opera", "heist", "noir detective"])}
        return kind, event_payload(kind, user_id=str(user), movie_id=movie, metadata=metadata)

    async def post_one(self, user: uuid.UUID) -> None:
        kind, body = self.event(user)
        self.in_flight = user
        try:
            response = await self._api.client.post(f"/api/v1/events/{kind}", json=body)
        finally:
            self.in_flight = None
        self.posted += 1
        if response.status_code == 200 and response.json()["status"] == "accepted":
            self.accepted[user] += 1
        else:
            self.failures.append(f"{kind} for {user}: {response.status_code} {response.text[:200]}")

    async def post_batch(self, users: list[uuid.UUID]) -> None:
        """One event per user, in one /events/batch request."""
        events = [{**body, "type": kind} for kind, body in map(self.event, users)]
        response = await self._api.client.post("/api/v1/events/batch", json={"events": events})
        assert response.status_code == 200, response.text
        for user, result in zip(users, response.json()["results"], strict=True):
            assert result["status"] == "accepted", result
            self.accepted[user] += 1
        self.posted += len(users)

    async def steady(self, stop: asyncio.Event) -> None:
        """Every user in turn (shuffled once), one event every POST_INTERVAL_S, until ``stop``."""
        order = list(self._users)
        self._rng.shuffle(order)
        n = 0
        while not stop.is_set():
            await self.post_one(order[n % len(order)])
            n += 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), POST_INTERVAL_S)


# --- the scenario ---------------------------------------------------------------------------------
@dataclasses.dataclass
class Scenario:
    api: Service
    admin: AIOKafkaAdminClient
    features_group: str
    catalog_group: str
    users: list[uuid.UUID]
    traffic: Traffic
    timings: dict[str, float] = dataclasses.field(default_factory=dict)

    @property
    def users_of(self) -> dict[int, list[uuid.UUID]]:
        grouped: dict[int, list[uuid.UUID]] = {p: [] for p in ALL_PARTITIONS}
        for user in self.users:
            grouped[partition_of(user)].append(user)
        return grouped

    async def snapshots(self) -> dict[uuid.UUID, UserFeatures]:
        async with self.api.runtime.database.transaction() as conn:
            return await SnapshotRepository(conn).load_many(self.users)

    async def totals(self) -> dict[uuid.UUID, int]:
        found = await self.snapshots()
        return {u: found[u].total_interactions if u in found else 0 for u in self.users}

    async def wait_applied(self, what: str, timeout: float = APPLY_S) -> float:
        """Until every user's snapshot counts every accepted event."""
        behind: list[str] = []

        async def caught_up() -> bool:
            nonlocal behind
            totals = await self.totals()
            accepted = self.traffic.accepted
            behind = [
                f"{u} p{partition_of(u)} {totals[u]}/{accepted[u]}"
                for u in self.users
                if totals[u] != accepted[u]
            ]
            return not behind

        return await eventually(
            what, caught_up, timeout, lambda: f"{len(behind)} user(s) behind, e.g. {behind[:5]}"
        )

    async def probe(self, frozen: WorkerProcess) -> frozenset[int]:
        """The partitions whose users are brought up to date while ``frozen`` is SIGSTOPped.
        A round fails (and is repeated) when the frozen worker held something the others need,
        e.g. the relay's advisory lock, so that nothing moved; or when the split is not 2 + 2."""
        users_of = self.users_of
        rounds: list[str] = []
        deadline = time.monotonic() + PROBE_BUDGET_S
        while True:
            before = await self.totals()
            frozen.pause()
            try:
                paused_at = time.monotonic()
                await self.traffic.post_batch(self.users)
                split: frozenset[int] | None = None
                moved: set[int] = set()
                still: set[int] = set()
                while time.monotonic() - paused_at < PAUSE_MAX_S:
                    totals = await self.totals()
                    accepted = self.traffic.accepted
                    moved = {
                        p for p, us in users_of.items() if all(totals[u] == accepted[u] for u in us)
                    }
                    still = {
                        p for p, us in users_of.items() if all(totals[u] == before[u] for u in us)
                    }
                    if len(moved) == 2 and moved | still == ALL_PARTITIONS:
                        split = frozenset(moved)
                        break
                    await asyncio.sleep(0.1)
                frozen_for = time.monotonic() - paused_at
            finally:
                frozen.resume()
            await self.wait_applied(f"catching up after {frozen.name} was frozen")
            if split is not None:
                self.timings[f"{frozen.name} frozen (s)"] = round(frozen_for, 2)
                self.timings[f"{frozen.name} freeze rounds"] = len(rounds) + 1
                return split
            rounds.append(f"caught up: {sorted(moved)}, untouched: {sorted(still)}")
            assert time.monotonic() < deadline, (
                f"freezing {frozen.name} never showed a 2 + 2 split of the partitions: {rounds}"
            )

    async def failover(self, dead: WorkerProcess, survivor_ids: dict[str, frozenset[str]]) -> None:
        """SIGKILL ``dead`` while the traffic goes on; until the groups' only members are the
        survivor's and an event posted after the kill was applied on every partition."""
        threshold = Counter(self.traffic.accepted)
        if self.traffic.in_flight is not None:  # it may be committed before the kill
            threshold[self.traffic.in_flight] += 1
        killed_at = time.monotonic()
        await dead.kill()  # the signal goes before its first await: no event slips in between
        users_of = self.users_of
        left: dict[str, float] = {}
        taken: dict[int, float] = {}
        states: dict[str, tuple[str, frozenset[str]]] = {}
        while True:
            now = time.monotonic() - killed_at
            for group, survivor in survivor_ids.items():
                if group not in left:
                    states[group] = await group_members(self.admin, group)
                    if states[group][1] == survivor:
                        left[group] = now
            totals = await self.totals()
            for p, us in users_of.items():
                if p not in taken and any(totals[u] > threshold[u] for u in us):
                    taken[p] = now
            if len(left) == len(survivor_ids) and set(taken) == ALL_PARTITIONS:
                break
            assert now < FAILOVER_S, (
                f"no failover within {FAILOVER_S}s of the SIGKILL: groups {states}, "
                f"left at {left}, partitions with post-kill progress at {taken}"
            )
            await asyncio.sleep(0.1)
        for group, at in left.items():
            self.timings[f"dead member gone from {group.rsplit('-', 1)[1]} group (s)"] = round(
                at, 2
            )
        for p, at in sorted(taken.items()):
            self.timings[f"post-kill events applied on p{p} (s)"] = round(at, 2)

    async def wait_online(self) -> None:
        """GET /features counts every accepted event, for every user."""
        behind: dict[uuid.UUID, Any] = {}

        async def caught_up() -> bool:
            for user in list(behind) or self.users:
                response = await self.api.client.get(f"/api/v1/features/{user}")
                total = (
                    response.json()["features"]["totalInteractions"]
                    if response.status_code == 200
                    else response.status_code
                )
                behind[user] = total
                if total == self.traffic.accepted[user]:
                    del behind[user]
            return not behind

        await eventually(
            "GET /features counting every accepted event",
            caught_up,
            APPLY_S,
            lambda: f"{len(behind)} behind: {[(str(u), behind[u]) for u in list(behind)[:5]]}",
        )


async def test_two_workers_share_the_partitions_and_the_survivor_takes_over(
    pg_schema: str, redis_url: str, kafka_broker: KafkaBroker, tmp_path: Path
) -> None:
    started = time.monotonic()
    settings = platform_settings(
        tmp_path,
        pg_schema,
        redis_url,
        kafka_broker,
        enable_consumers=False,
        kafka_session_timeout_ms=SESSION_TIMEOUT_MS,
    )
    env = worker_env(pg_schema, kafka_broker, redis_url, tmp_path)
    first = WorkerProcess("worker-1", env, tmp_path / "worker-1.log")
    second = WorkerProcess("worker-2", env, tmp_path / "worker-2.log")
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_broker.bootstrap, request_timeout_ms=5000)
    await admin.start()
    try:
        async with run_service(settings) as api:
            try:
                await _scenario(
                    api,
                    admin,
                    settings.features_consumer_group,
                    settings.catalog_consumer_group,
                    first,
                    second,
                    started,
                )
            except BaseException:
                for worker in (first, second):
                    print(f"----- {worker.name} (exit code {worker.exit_code}), last lines -----")
                    print(worker.log_tail())
                raise
            finally:
                await first.stop()
                await second.stop()
    finally:
        await admin.close()


async def _scenario(
    api: Service,
    admin: AIOKafkaAdminClient,
    features_group: str,
    catalog_group: str,
    first: WorkerProcess,
    second: WorkerProcess,
    started: float,
) -> None:
    users = [uuid.uuid4() for _ in range(USERS)]
    movies = [uuid.uuid4() for _ in range(MOVIES)]
    genres = ["drama", "comedy", "sci-fi", "thriller", "animation", "documentary"]
    catalog = await api.client.post(
        "/api/v1/movies/batch",
        json={
            "movies": [
                {
                    "movieId": str(movie),
                    "title": f"Movie {n}",
                    "genres": [genres[n % 6], genres[(n * 5 + 1) % 6]],
                    "durationMinutes": 80 + 5 * n,
                    "available": True,
                }
                for n, movie in enumerate(movies)
            ]
        },
    )
    assert catalog.status_code == 200, catalog.text
    assert catalog.json()["upserted"] == MOVIES
    # The workers read the catalog when they start; the API (whose refresh uses it) by polling.
    await eventually(
        "the API's catalog cache knowing the movies",
        _async(lambda: all(api.runtime.catalog.get(m) is not None for m in movies)),
        15.0,
        lambda: "still unknown",
    )
    traffic = Traffic(api, users, movies)
    run = Scenario(api, admin, features_group, catalog_group, users, traffic)
    assert {partition_of(u) for u in users} == ALL_PARTITIONS
    nobody: frozenset[str] = frozenset()

    # 1. Worker 1 alone: it joins both groups and processes every partition.
    first.start()
    run.timings["worker-1 started (s)"] = round(await first.wait_logged("worker_started", 60), 2)
    first_features = await wait_for_members(admin, features_group, 1, including=nobody)
    first_catalog = await wait_for_members(admin, catalog_group, 1, including=nobody)
    await traffic.post_batch(users)
    run.timings["worker-1 first events applied (s)"] = round(
        await run.wait_applied("worker 1 applying the first events"), 2
    )

    # 2. Worker 2 joins the same groups.
    second.start()
    join_started = time.monotonic()
    await second.wait_logged("worker_started", WORKER_START_S)
    both_features = await wait_for_members(admin, features_group, 2, including=first_features)
    both_catalog = await wait_for_members(admin, catalog_group, 2, including=first_catalog)
    run.timings["worker-2 start and join (s)"] = round(time.monotonic() - join_started, 2)

    # 3. They share the partitions: each processes its own 2 while the other one is frozen.
    owned_by_second = await run.probe(first)
    owned_by_first = await run.probe(second)
    assert owned_by_first | owned_by_second == ALL_PARTITIONS
    assert not owned_by_first & owned_by_second
    assert await group_members(admin, features_group) == ("Stable", both_features)
    assert await group_members(admin, catalog_group) == ("Stable", both_catalog)

    # 4. Steady traffic, SIGKILL worker 1, the survivor takes over all 4 partitions.
    stop_traffic = asyncio.Event()
    poster = asyncio.create_task(traffic.steady(stop_traffic))
    try:
        posted = traffic.posted
        await eventually(
            "a full round of steady traffic on two workers",
            _async(lambda: traffic.posted >= posted + USERS),
            60.0,
            lambda: f"{traffic.posted - posted} posted",
        )
        await run.failover(
            first,
            {
                features_group: both_features - first_features,
                catalog_group: both_catalog - first_catalog,
            },
        )
        # One more full round: every user gets events after the takeover. (This also repairs a
        # user whose Redis copy went stale because worker 1 died between its snapshot commit and
        # its Redis write: the survivor skips the redelivered batch and writes nothing online.)
        posted = traffic.posted
        await eventually(
            "a full round of steady traffic after the takeover",
            _async(lambda: traffic.posted >= posted + USERS),
            60.0,
            lambda: f"{traffic.posted - posted} posted",
        )
    finally:
        stop_traffic.set()
        await poster
    assert traffic.failures == []

    # 5. Caught up: online copy == snapshot, and the incremental features == a refresh.
    run.timings["survivor caught up (s)"] = round(await run.wait_applied("survivor catching up"), 2)
    await run.wait_online()
    before = await run.snapshots()
    online = await api.runtime.feature_store.get_many(users)
    stale = [str(u) for u in users if online.get(u) != before[u]]
    assert not stale, f"Redis differs from the snapshot for {len(stale)} user(s): {stale[:5]}"
    for user in users:
        refreshed = await api.client.post(f"/api/v1/features/{user}/refresh?days_back=365")
        assert refreshed.status_code == 200, refreshed.text
        assert refreshed.json()["version"] == before[user].version + 1
    after = await run.snapshots()
    at = datetime.now(UTC)
    differing = [
        u
        for u in users
        if feature_document(before[u], now=at) != feature_document(after[u], now=at)
    ]
    assert not differing, (
        f"{len(differing)} user(s) whose incremental features differ from a refresh, e.g. "
        f"{differing[0]}:\nincremental {feature_document(before[differing[0]], now=at)}\n"
        f"refreshed   {feature_document(after[differing[0]], now=at)}"
    )
    assert all(dataclasses.replace(before[u], version=after[u].version) == after[u] for u in users)

    # 6. The survivor is still there and stops cleanly.
    assert second.running, f"worker 2 exited with {second.exit_code}"
    await second.stop()
    assert second.exit_code == 0
    assert "worker_stopping" in second.log_text()
    run.timings["events accepted"] = sum(traffic.accepted.values())
    run.timings["total (s)"] = round(time.monotonic() - started, 1)
    print(f"\nworkers failover timings: {run.timings}")


def _async(check: Callable[[], bool]) -> Callable[[], Awaitable[bool]]:
    async def wrapped() -> bool:
        return check()

    return wrapped
