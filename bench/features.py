"""Feature-pipeline benchmark: one worker's throughput and event→feature freshness, in one run.

    .venv/bin/python bench/features.py [--rate 2000] [--duration 30] [--events 60000]
                                       [--write docs/benchmarks.md]

Everything runs against Postgres (a fresh schema, migrated by AUTO_MIGRATE=true and dropped at the
end), Redis (a unique REDIS_KEY_PREFIX, its keys deleted at the end) and Tansu (a Kafka-protocol
broker, a unique KAFKA_TOPIC_PREFIX), like bench/ingest.py.

1. Pre-load. A synthetic world (`demo.world.generate_world`, --users users, enough days for every
   event this run needs) is generated; its first --events events (by clientTimestamp) and its
   movies are loaded with `recommender demo load` (the ingest path: raw_events + outbox) while
   `recommender serve` runs with ENABLE_CONSUMERS=false, so its outbox relay publishes them to
   `interaction_events` and nothing consumes them. The run waits until the outbox has no pending
   row and every event's row is marked sent.
2. Consumer throughput. ONE `recommender worker` starts with fresh consumer groups and catches up
   from offset 0. The feature group's committed offsets are polled (aiokafka admin,
   OffsetFetch) every 100 ms: events/s = events committed between the first and the last
   observed commit over that time; CPU µs/event = the worker's utime + stime (/proc/PID/stat)
   over the same window per event. The worker also runs the catalog-placeholder consumer (its
   own group, reading the same events) and an outbox relay (idle here): their CPU is included.
   --profile (default: only when the throughput aim is missed) then repeats the catch-up with a
   fresh worker under py-spy (the snapshot table and the Redis keys are cleared first, so the
   replay does the same work) and prints the hotspots; that worker serves step 3.
3. Freshness at a steady input rate. With the worker caught up, a Python asyncio httpx client
   posts pre-built batches of --batch-size events of the same world (the events after the
   pre-loaded ones: existing users with history) to POST /api/v1/events/batch on a fixed
   schedule (--rate events/s; a batch every batch-size/rate seconds, sent without waiting for the
   previous answer), after a --warmup run of the same kind. Every --probe-interval seconds a
   probe, one watch event of a fresh user, goes to POST /api/v1/events/watch; Redis
   `{prefix}features:{userId}` is polled (MGET of every pending probe every --poll-ms) until it
   decodes to totalInteractions == 1. Freshness = the time it was seen minus the event's
   serverTimestamp from the API answer (one clock: everything runs on this machine). After the
   run each probe's Kafka CreateTime and snapshot updated_at split that time into stages. The
   consumer lag (events the outbox marked sent minus the group's committed offsets: Tansu's end
   offsets undercount) is sampled during the window, at its end, and until it reaches zero.
   --profile (default: only when the freshness aim is missed) adds an extra --profile-seconds
   run of the same input with py-spy on the worker (not in the table).
4. Prints a markdown section; --write replaces the section between the bench:features markers of
   the given file (appended if it has no markers).

Every process it starts is stopped in a finally block (SIGTERM too); the schema is dropped and
the Redis keys of the run's prefix are deleted at the end. Logs and profiles go to
bench/results/features-<time>/ (git-ignored).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from random import Random
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/ingest.py, bench/report.py

from ingest import (
    ROOT,
    VENV_BIN,
    Cpu,
    CpuMeter,
    KafkaBroker,
    _pg_dsn,
    _proc_cpu,
    cpu_text,
    delete_redis_keys,
    free_port,
    pg,
    server,
    start_kafka,
    stop_process,
    workspace,
)
from report import (
    Run,
    add_store_args,
    close_section,
    markers,
    percentile,
    profile_counts,
    publish,
    publish_hotspots,
    summarize_profile,
    verdict,
)

START_MARKER, END_MARKER = markers("features")
AIM_THROUGHPUT_EVENTS_S = 3000
AIM_FRESHNESS_P99_S = 1.0
AIM_RATE = 2000
_VERSION_DIGITS = 20  # features/store.py: 20 ASCII digits of the version, then the encoding
_SAMPLE_S = 0.1  # offset polling period during the catch-up


# --------------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------------
@dataclass
class CatchUp:
    """One worker catching up from offset 0 on `total` events."""

    total: int
    events: int = 0  # events committed between the first and the last observed commit
    wall_s: float = math.nan
    cpu_s: float = math.nan  # worker utime + stime over that window (/proc/PID/stat)
    cpu: Cpu | None = None  # cores busy (schedstat), Postgres, machine over that window
    startup_s: float = math.nan  # worker start to its first observed commit
    placeholders_s: float = math.nan  # worker start to the placeholder group's last commit
    features_done_s: float = math.nan  # worker start to the feature group's last commit
    writes: int = 0  # snapshot writes (one per user per micro-batch that changed it)

    @property
    def events_s(self) -> float:
        return self.events / self.wall_s if self.wall_s > 0 else math.nan

    @property
    def cpu_us_per_event(self) -> float:
        return self.cpu_s / self.events * 1e6 if self.events else math.nan


@dataclass
class Probe:
    user_id: str
    body: bytes
    sent_at: float = math.nan  # time.time() when sent
    server_ts: float = math.nan  # serverTimestamp of the API answer (epoch s)
    status: str = ""
    seen_at: float = math.nan  # time.time() when Redis first showed the event
    interactions: int = 0
    published_at: float = math.nan  # the Kafka message's CreateTime (the relay's send())
    handled_at: float = math.nan  # user_features.updated_at (the consumer's save, pre-commit)

    @property
    def freshness_s(self) -> float:
        return self.seen_at - self.server_ts

    def stages(self) -> tuple[float, float, float]:
        """(API answer's serverTimestamp → relay send, → consumer's snapshot write, → seen in
        Redis)."""
        return (
            self.published_at - self.server_ts,
            self.handled_at - self.published_at,
            self.seen_at - self.handled_at,
        )


@dataclass
class Stream:
    """One paced run of batches (and probes)."""

    duration_s: float
    batches_planned: int
    requests: int = 0
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    errors: int = 0
    elapsed_s: float = math.nan  # first send to the last answer (batches and probes)
    schedule_s: float = math.nan  # first to the last scheduled send
    late_sends: int = 0  # batches sent more than one interval after their slot
    latencies: list[float] = field(default_factory=list)
    probes: list[Probe] = field(default_factory=list)
    probe_timeouts: int = 0
    lag_samples: list[tuple[int, int]] = field(default_factory=list)  # (Kafka lag, outbox)
    lag_at_end: int = -1
    outbox_at_end: int = -1
    drained_after_s: float = math.nan
    cpu_worker: Cpu | None = None
    cpu_serve: Cpu | None = None
    writes: int = -1  # snapshot writes caused by this run (sum of user_features.version)
    cpu_tansu: float = math.nan
    client_cpu: float = math.nan

    @property
    def probes_accepted(self) -> int:
        return sum(p.status == "accepted" for p in self.probes)

    @property
    def events_s(self) -> float:
        return (self.accepted + self.probes_accepted) / self.elapsed_s

    @property
    def max_lag(self) -> int:
        return max((lag for lag, _ in self.lag_samples), default=-1)

    @property
    def max_outbox(self) -> int:
        return max((pending for _, pending in self.lag_samples), default=-1)

    def freshness(self) -> list[float]:
        return sorted(p.freshness_s for p in self.probes if not math.isnan(p.seen_at))

    def stage(self, index: int) -> list[float]:
        values = (p.stages()[index] for p in self.probes)
        return sorted(v for v in values if not math.isnan(v))


@dataclass
class Report:
    args: argparse.Namespace
    run: Run
    world: str = ""
    preload: str = ""
    catch_up: CatchUp | None = None
    profiled: CatchUp | None = None
    stream: Stream | None = None
    hotspots: str = ""
    profile_notes: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------------------------
# Processes
# --------------------------------------------------------------------------------------------
def service_env(
    args: argparse.Namespace, schema: str, kafka: KafkaBroker, data_dir: Path
) -> dict[str, str]:
    from interaction_recommender.settings import Settings

    env = {k: v for k, v in os.environ.items() if k.lower() not in Settings.model_fields}
    env.update(
        DATABASE_URL=args.database_url,
        DATABASE_SCHEMA=schema,
        AUTO_MIGRATE="true",
        REDIS_URL=args.redis_url,
        REDIS_KEY_PREFIX=redis_prefix(schema),
        ENABLE_KAFKA="true",
        KAFKA_BOOTSTRAP_SERVERS=kafka.bootstrap,
        KAFKA_TOPIC_PREFIX=f"{schema}.",
        ACCESS_LOG="false",
        LOG_LEVEL="INFO",
        DATA_DIR=str(data_dir),
        DEMO_DATA="false",
    )
    return env


def redis_prefix(schema: str) -> str:
    return f"{schema}:"


@contextlib.contextmanager
def worker(env: dict[str, str], log: Path, name: str) -> Iterator[subprocess.Popen[bytes]]:
    """`recommender worker` (no HTTP: readiness is its first committed offset)."""
    with log.open("ab") as out:
        process = subprocess.Popen(
            [str(VENV_BIN / "recommender"), "worker"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )
    print(f"[bench] {name} started (pid {process.pid}, log {log})", file=sys.stderr)
    try:
        yield process
    finally:
        stop_process(process, name)


def worker_env(base: dict[str, str], tag: str) -> dict[str, str]:
    """Fresh consumer groups: the worker starts from offset 0 of every partition."""
    env = dict(base)
    env.update(
        AUTO_MIGRATE="false",
        FEATURES_CONSUMER_GROUP=f"bench-features-{tag}",
        CATALOG_CONSUMER_GROUP=f"bench-catalog-{tag}",
    )
    return env


def process_cpu_s(pid: int) -> float:
    """utime + stime of the process (all its threads), in seconds."""
    return _proc_cpu(Path(f"/proc/{pid}/stat").read_text())[1]


def _check_alive(process: subprocess.Popen[bytes], name: str, log: Path) -> None:
    if process.poll() is not None:
        tail = log.read_text(errors="replace")[-3000:]
        raise RuntimeError(f"{name} exited with {process.returncode}:\n{tail}")


# --------------------------------------------------------------------------------------------
# Kafka (a group's committed offsets) and the outbox (what was published)
# --------------------------------------------------------------------------------------------
class KafkaView:
    """A consumer group's committed offsets (aiokafka admin, OffsetFetch), summed over the
    topic's partitions. Offsets start at 0 and have no gaps, so the sum counts messages.

    The topic's end offsets are not used: Tansu's ListOffsets answered fewer than the messages
    a consumer reads from the same partitions (2263 for a partition whose last offset was 2264),
    so "published" is counted in the outbox instead (rows of the topic marked sent)."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self._bootstrap = bootstrap
        self._topic = topic
        self._partitions: list[Any] = []

    async def __aenter__(self) -> KafkaView:
        from aiokafka import AIOKafkaConsumer, TopicPartition
        from aiokafka.admin import AIOKafkaAdminClient

        # The partitions from a consumer's metadata: Tansu drops the connection on an
        # OffsetFetch for "all partitions of the group" (a null topic list).
        consumer = AIOKafkaConsumer(bootstrap_servers=self._bootstrap, enable_auto_commit=False)
        await consumer.start()
        try:
            await consumer.topics()
            partitions = consumer.partitions_for_topic(self._topic) or set()
        finally:
            await consumer.stop()
        if not partitions:
            raise RuntimeError(f"topic {self._topic} does not exist")
        self._partitions = [TopicPartition(self._topic, p) for p in sorted(partitions)]
        self.admin = AIOKafkaAdminClient(
            bootstrap_servers=self._bootstrap, request_timeout_ms=10_000
        )
        await self.admin.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        with contextlib.suppress(Exception):
            await self.admin.close()

    async def committed(self, group: str) -> int:
        offsets = await self.admin.list_consumer_group_offsets(group, partitions=self._partitions)
        return sum(max(o.offset, 0) for tp, o in offsets.items() if tp.topic == self._topic)


class OutboxView:
    """Outbox rows of the events topic: published (sent) and pending (one asyncpg connection)."""

    def __init__(self, url: str, schema: str, topic: str) -> None:
        assert re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", schema)
        self._url = url
        self._topic = topic
        self._sql = (
            "SELECT count(*) FILTER (WHERE sent_at IS NOT NULL), "  # noqa: S608
            f"count(*) FILTER (WHERE sent_at IS NULL) FROM {schema}.outbox WHERE topic = $1"
        )

    async def __aenter__(self) -> OutboxView:
        import asyncpg

        self._conn = await asyncpg.connect(_pg_dsn(self._url), timeout=5)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._conn.close()

    async def fetch(self, sql: str, *params: object) -> list[Any]:
        return list(await self._conn.fetch(sql, *params))

    async def writes(self, schema: str) -> int:
        """Snapshot writes so far: every write adds one to its user's version."""
        sql = f"SELECT coalesce(sum(version), 0) FROM {schema}.user_features"  # noqa: S608
        return int(await self._conn.fetchval(sql))

    async def counts(self) -> tuple[int, int]:
        """(published, pending)."""
        row = await self._conn.fetchrow(self._sql, self._topic)
        return int(row[0]), int(row[1])


def snapshot_writes(url: str, schema: str) -> int:
    """Snapshot writes so far: every write adds one to its user's version."""
    return int(pg(url, f"SELECT coalesce(sum(version), 0) FROM {schema}.user_features"))  # noqa: S608


# --------------------------------------------------------------------------------------------
# 1. The world and the pre-load
# --------------------------------------------------------------------------------------------
def make_world(args: argparse.Namespace, needed: int) -> Any:
    """A world with at least `needed` events (more days until it has them)."""
    from interaction_recommender.demo.world import generate_world

    end = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    days = 90
    for _ in range(6):
        world = generate_world(args.seed, movies=args.movies, users=args.users, days=days, end=end)
        if len(world.events) >= needed:
            return world, days
        days = math.ceil(days * needed / max(len(world.events), 1) * 1.1)
    raise RuntimeError(f"could not generate {needed} events with {args.users} users")


def preload(
    args: argparse.Namespace, world: Any, env: dict[str, str], work: Path, logs: Path
) -> tuple[int, float]:
    """`recommender demo load` of the world's movies and first --events events."""
    from interaction_recommender.demo.world import World, write_world

    path = work / "world.jsonl"
    write_world(World(movies=world.movies, events=world.events[: args.events], users=[]), path)
    started = time.perf_counter()
    with (logs / "demo-load.log").open("ab") as out:
        done = subprocess.run(
            [str(VENV_BIN / "recommender"), "demo", "load", str(path)],
            env={**env, "AUTO_MIGRATE": "false"},
            stdout=subprocess.PIPE,
            stderr=out,
            cwd=ROOT,
            timeout=1800,
            check=False,
        )
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"demo load failed ({done.returncode}); see {logs / 'demo-load.log'}")
    stored = json.loads(done.stdout.decode().strip().splitlines()[-1])["events"]
    return int(stored), elapsed


async def wait_published(url: str, schema: str, topic: str, expected: int) -> float:
    """Until the outbox holds no pending event and `expected` events were published."""
    started = time.perf_counter()
    deadline, next_report = started + 600, started + 10
    published = pending = -1
    async with OutboxView(url, schema, topic) as outbox:
        while time.perf_counter() < deadline:
            published, pending = await outbox.counts()
            if pending == 0 and published >= expected:
                return time.perf_counter() - started
            if time.perf_counter() >= next_report:
                next_report += 10
                print(
                    f"[bench] publishing: {published:,} published, {pending:,} pending",
                    file=sys.stderr,
                )
            await asyncio.sleep(0.5)
    raise RuntimeError(f"the outbox was not drained within 600 s ({pending} pending)")


# --------------------------------------------------------------------------------------------
# 2. Throughput: one worker catching up
# --------------------------------------------------------------------------------------------
async def measure_catch_up(
    bootstrap: str,
    topic: str,
    env: dict[str, str],
    total: int,
    process: subprocess.Popen[bytes],
    log: Path,
    started: float,
    on_first_commit: Callable[[], None] | None = None,
) -> CatchUp:
    result = CatchUp(total=total)
    groups = (env["FEATURES_CONSUMER_GROUP"], env["CATALOG_CONSUMER_GROUP"])
    deadline = time.perf_counter() + max(300.0, total / 200)
    first: tuple[float, int, float] | None = None
    meter: CpuMeter | None = None
    async with KafkaView(bootstrap, topic) as kafka:
        while time.perf_counter() < deadline:
            _check_alive(process, "worker", log)
            features = await kafka.committed(groups[0])
            placeholders = await kafka.committed(groups[1])
            now = time.perf_counter()
            cpu = process_cpu_s(process.pid)
            if placeholders >= total and math.isnan(result.placeholders_s):
                result.placeholders_s = now - started
            if features > 0 and first is None:
                first = (now, features, cpu)
                meter = CpuMeter(process.pid)
                result.startup_s = now - started
                print(
                    f"[bench] first commit after {result.startup_s:.1f}s ({features} events)",
                    file=sys.stderr,
                )
                if on_first_commit is not None:
                    on_first_commit()
            if first is not None and features >= total:
                result.features_done_s = now - started
                result.events = features - first[1]
                result.wall_s = now - first[0]
                result.cpu_s = cpu - first[2]
                assert meter is not None
                result.cpu = meter.stop()
                break
            await asyncio.sleep(_SAMPLE_S)
        else:
            raise RuntimeError("the worker did not catch up in time")
        # The placeholder consumer usually finishes first; wait a little for it otherwise.
        while math.isnan(result.placeholders_s) and time.perf_counter() < deadline:
            if await kafka.committed(groups[1]) >= total:
                result.placeholders_s = time.perf_counter() - started
            await asyncio.sleep(_SAMPLE_S)
    print(
        f"[bench] catch-up: {result.events:,} events in {result.wall_s:.1f}s = "
        f"{result.events_s:,.0f} events/s, {result.cpu_us_per_event:.0f} CPU µs/event, cores "
        f"worker/postgres/machine {result.cpu.text() if result.cpu else '?'}; placeholder group "
        f"done after {result.placeholders_s:.1f}s",
        file=sys.stderr,
    )
    return result


def run_catch_up(
    kafka: KafkaBroker,
    topic: str,
    env: dict[str, str],
    total: int,
    process: subprocess.Popen[bytes],
    log: Path,
    started: float,
    on_first_commit: Callable[[], None] | None = None,
) -> CatchUp:
    return asyncio.run(
        measure_catch_up(kafka.bootstrap, topic, env, total, process, log, started, on_first_commit)
    )


# --------------------------------------------------------------------------------------------
# 3. Freshness under a steady input rate
# --------------------------------------------------------------------------------------------
_ACCEPTED = re.compile(rb'"accepted":(\d+),"duplicates":(\d+),"rejected":(\d+)')


def batch_bodies(events: list[dict[str, Any]], size: int) -> list[bytes]:
    import orjson

    return [
        orjson.dumps({"events": events[i : i + size]})
        for i in range(0, len(events) - size + 1, size)
    ]


def make_probes(count: int, movies: list[str], seed: int) -> list[Probe]:
    import orjson

    rng = Random(f"bench-features-probes/{seed}")
    probes = []
    for _ in range(count):
        user = str(uuid.uuid4())
        body = {
            "requestId": str(uuid.uuid4()),
            "userId": user,
            "movieId": rng.choice(movies),
            "metadata": {
                "watchDuration": 60,
                "device": "web",
                "quality": "1080p",
                "sessionId": str(uuid.uuid4()),
                "progressPercent": 5.0,
            },
        }
        probes.append(Probe(user, orjson.dumps(body)))
    return probes


async def stream(
    api: str,
    bodies: list[bytes],
    interval_s: float,
    probes: list[Probe],
    probe_interval_s: float,
    *,
    redis_url: str,
    prefix: str,
    poll_s: float,
    lag: Callable[[], Awaitable[tuple[int, int]]] | None,
    settle_timeout_s: float,
    worker_pid: int,
    serve_pid: int,
    tansu_pid: int,
) -> Stream:
    """Send `bodies` one every `interval_s` and the probes one every `probe_interval_s`; poll
    Redis for the probes; sample `lag()`: (published events not committed by the feature group,
    events still in the outbox)."""
    import httpx
    import orjson
    from redis.asyncio import Redis

    from interaction_recommender.features.codec import decode

    result = Stream(duration_s=len(bodies) * interval_s, batches_planned=len(bodies))
    result.probes = probes
    headers = {"content-type": "application/json"}
    pending: dict[str, Probe] = {}  # Redis key -> probe not seen yet
    redis = Redis.from_url(redis_url)
    sending_done = asyncio.Event()
    last_answer = [0.0]

    async def post_batch(client: httpx.AsyncClient, body: bytes) -> None:
        sent = time.perf_counter()
        try:
            response = await client.post(f"{api}/events/batch", content=body, headers=headers)
        except httpx.HTTPError:
            result.errors += 1
            return
        finally:
            last_answer[0] = max(last_answer[0], time.perf_counter())
        result.latencies.append(time.perf_counter() - sent)
        result.requests += 1
        result.statuses[response.status_code] += 1
        if 200 <= response.status_code < 300:
            match = _ACCEPTED.search(response.content)
            if match is None:
                data = json.loads(response.content)
                counts = (data["accepted"], data["duplicates"], data["rejected"])
            else:
                counts = tuple(int(g) for g in match.groups())
            result.accepted += counts[0]
            result.duplicates += counts[1]
            result.rejected += counts[2]

    async def post_probe(client: httpx.AsyncClient, probe: Probe) -> None:
        key = f"{prefix}features:{probe.user_id}"
        pending[key] = probe  # before sending: the key may appear before the answer arrives
        probe.sent_at = time.time()
        try:
            response = await client.post(f"{api}/events/watch", content=probe.body, headers=headers)
        except httpx.HTTPError:
            result.errors += 1
            pending.pop(key, None)
            return
        finally:
            last_answer[0] = max(last_answer[0], time.perf_counter())
        result.statuses[response.status_code] += 1
        if response.status_code != 200:
            pending.pop(key, None)
            return
        data = orjson.loads(response.content)
        probe.status = data["status"]
        probe.server_ts = datetime.fromisoformat(data["serverTimestamp"]).timestamp()

    async def poll_redis() -> None:
        while not (sending_done.is_set() and not pending):
            if pending:
                keys = list(pending)
                values = await redis.mget(keys)
                now = time.time()
                for key, value in zip(keys, values, strict=True):
                    if value is None or value == b"erased":
                        continue
                    features = decode(value[_VERSION_DIGITS:])
                    if features.total_interactions >= 1:
                        probe = pending.pop(key)
                        probe.seen_at = now
                        probe.interactions = features.total_interactions
            await asyncio.sleep(poll_s)

    async def sample_lag() -> None:
        if lag is None:
            return
        while not sending_done.is_set():
            with contextlib.suppress(Exception):
                result.lag_samples.append(await lag())
            await asyncio.sleep(0.5)

    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    cpu, wall = time.process_time(), time.perf_counter()
    worker_meter, serve_meter = CpuMeter(worker_pid), CpuMeter(serve_pid)
    tansu_cpu = process_cpu_s(tansu_pid)
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:
        poller = asyncio.create_task(poll_redis())
        sampler = asyncio.create_task(sample_lag())
        tasks: set[asyncio.Task[None]] = set()
        started = time.perf_counter()
        schedule = sorted(
            [(i * interval_s, 0, i) for i in range(len(bodies))]
            + [(j * probe_interval_s + probe_interval_s / 2, 1, j) for j in range(len(probes))]
        )
        for offset, kind, index in schedule:
            delay = started + offset - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            elif kind == 0 and -delay > interval_s:
                result.late_sends += 1
            if kind == 0:
                task = asyncio.create_task(post_batch(client, bodies[index]))
            else:
                task = asyncio.create_task(post_probe(client, probes[index]))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        result.schedule_s = time.perf_counter() - started
        if tasks:
            await asyncio.gather(*tasks)
        result.elapsed_s = last_answer[0] - started
        sending_done.set()
        result.cpu_worker, result.cpu_serve = worker_meter.stop(), serve_meter.stop()
        result.cpu_tansu = (process_cpu_s(tansu_pid) - tansu_cpu) / (time.perf_counter() - wall)
        result.client_cpu = (time.process_time() - cpu) / (time.perf_counter() - wall)
        await sampler
        end_input = time.perf_counter()
        if lag is not None:
            result.lag_at_end, result.outbox_at_end = await lag()
        try:
            await asyncio.wait_for(poller, settle_timeout_s)
        except TimeoutError:
            result.probe_timeouts = len(pending)
        if lag is not None:
            while time.perf_counter() - end_input < settle_timeout_s:
                behind, in_outbox = await lag()
                if behind <= 0 and in_outbox == 0:
                    result.drained_after_s = time.perf_counter() - end_input
                    break
                await asyncio.sleep(0.1)
    await redis.aclose()
    return result


def run_stream(
    args: argparse.Namespace,
    api: str,
    bodies: list[bytes],
    probes: list[Probe],
    *,
    schema: str,
    kafka: KafkaBroker,
    topic: str,
    group: str,
    worker_pid: int,
    serve_pid: int,
    label: str,
) -> Stream:
    import uvloop

    interval = args.batch_size / args.rate

    async def run() -> Stream:
        async with (
            KafkaView(kafka.bootstrap, topic) as view,
            OutboxView(args.database_url, schema, topic) as outbox,
        ):

            async def lag() -> tuple[int, int]:
                published, pending = await outbox.counts()
                return max(published - await view.committed(group), 0), pending

            writes_before = await outbox.writes(schema)
            result = await stream(
                api,
                bodies,
                interval,
                probes,
                args.probe_interval,
                redis_url=args.redis_url,
                prefix=redis_prefix(schema),
                poll_s=args.poll_ms / 1000,
                lag=lag,
                settle_timeout_s=60.0,
                worker_pid=worker_pid,
                serve_pid=serve_pid,
                tansu_pid=kafka.process.pid,
            )
            if not math.isnan(result.drained_after_s):
                result.writes = await outbox.writes(schema) - writes_before
            if probes:
                await probe_stages(kafka.bootstrap, topic, outbox, schema, probes)
            return result

    print(
        f"[bench] {label}: {len(bodies)} batches of {args.batch_size} every {interval * 1000:.1f} "
        f"ms + {len(probes)} probes",
        file=sys.stderr,
    )
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        result = runner.run(run())
    fresh = result.freshness()
    print(
        f"[bench] {label}: {result.events_s:,.0f} events/s accepted over {result.elapsed_s:.1f}s "
        f"(schedule {result.schedule_s:.1f}s, late sends {result.late_sends}), statuses "
        f"{dict(result.statuses)}, errors {result.errors}, rejected {result.rejected}, "
        f"duplicates {result.duplicates}; probes {len(fresh)}/{len(probes)} seen, "
        f"timeouts {result.probe_timeouts}; freshness p50 {percentile(fresh, 50):.3f}s "
        f"p99 {percentile(fresh, 99):.3f}s max {max(fresh, default=math.nan):.3f}s; lag max "
        f"{result.max_lag} (outbox max {result.max_outbox}), at end {result.lag_at_end}, "
        f"outbox at end {result.outbox_at_end}, drained after {result.drained_after_s:.2f}s; "
        f"cores worker {result.cpu_worker.text() if result.cpu_worker else '?'}, serve "
        f"{result.cpu_serve.text() if result.cpu_serve else '?'}, client {result.client_cpu:.2f}",
        file=sys.stderr,
    )
    if probes:
        print(f"[bench] {label}: stages {stages_text(result)}", file=sys.stderr)
    return result


def stages_text(result: Stream) -> str:
    names = ("API → relay send", "relay send → consumer's snapshot write", "write → seen in Redis")
    parts = []
    for index, name in enumerate(names):
        values = result.stage(index)
        parts.append(
            f"{name} p50 {percentile(values, 50) * 1000:,.0f} ms / p99 "
            f"{percentile(values, 99) * 1000:,.0f} ms"
        )
    return "; ".join(parts)


async def probe_stages(
    bootstrap: str, topic: str, outbox: OutboxView, schema: str, probes: list[Probe]
) -> None:
    """After a run: each probe's Kafka CreateTime (a groupless consumer reads the topic from the
    start) and the updated_at of its snapshot row (its one write)."""
    from aiokafka import AIOKafkaConsumer

    by_user = {p.user_id: p for p in probes}
    rows = await outbox.fetch(
        f"SELECT user_id::text AS user_id, updated_at FROM {schema}.user_features "  # noqa: S608
        "WHERE user_id = ANY($1::uuid[])",
        list(by_user),
    )
    for row in rows:
        by_user[row["user_id"]].handled_at = row["updated_at"].timestamp()
    keys = {p.user_id.encode(): p for p in probes}
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        deadline = time.perf_counter() + 120
        missing = len(keys)
        while missing and time.perf_counter() < deadline:
            batches = await consumer.getmany(timeout_ms=1000, max_records=10_000)
            for messages in batches.values():
                for message in messages:
                    probe = keys.get(message.key)
                    if probe is not None and math.isnan(probe.published_at):
                        probe.published_at = message.timestamp / 1000
                        missing -= 1
    finally:
        await consumer.stop()


# --------------------------------------------------------------------------------------------
# Profiling (py-spy on the worker)
# --------------------------------------------------------------------------------------------
class Spy:
    """py-spy record on a PID from start() until stop() (SIGINT: py-spy then writes the file)."""

    def __init__(self, pid: int, out: Path) -> None:
        self.pid = pid
        self.out = out
        self.process: subprocess.Popen[bytes] | None = None
        self.error = ""

    def start(self) -> None:
        py_spy = shutil.which("py-spy", path=str(VENV_BIN)) or shutil.which("py-spy")
        if py_spy is None:
            self.error = "py-spy is not installed"
            return
        argv = [py_spy, "record", "-r", "100", "-p", str(self.pid), "-o", str(self.out)]
        argv += ["--format", "speedscope", "--nonblocking"]
        print(f"[bench] {shlex.join(argv)}", file=sys.stderr)
        self.process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def summary(self, top: int) -> str:
        if self.out.exists():
            return summarize_speedscope(self.out, top=top)
        return f"py-spy wrote no profile: {self.error}"

    def headline(self) -> str:
        return headline(self.out) if self.out.exists() else "no profile"

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        try:
            _, err = self.process.communicate(timeout=60)
            self.error = err.decode(errors="replace")[-500:]
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


_GROUPS: dict[str, tuple[str, ...]] = {
    "feature consumer handle (features/consumer.py)": (
        "interaction_recommender/features/consumer",
    ),
    "feature extraction (features/extractor.py)": ("interaction_recommender/features/extractor",),
    "feature codec (features/codec.py)": ("interaction_recommender/features/codec",),
    "snapshot SQL (features/repository.py)": ("interaction_recommender/features/repository",),
    "Redis store (features/store.py)": ("interaction_recommender/features/store",),
    "message decode (events/messages.py)": ("interaction_recommender/events/messages",),
    "placeholder consumer (catalog/placeholders.py)": (
        "interaction_recommender/catalog/placehold",
    ),
    "consumer loop (bus/consumer.py)": ("interaction_recommender/bus/consumer",),
    "Kafka bus adapter (bus/kafka.py)": ("interaction_recommender/bus/kafka",),
    "outbox relay (outbox/)": ("interaction_recommender/outbox/",),
    "SQLAlchemy (sqlalchemy/)": ("sqlalchemy/",),
    "asyncpg (asyncpg/)": ("asyncpg/",),
    "aiokafka (aiokafka/)": ("aiokafka/",),
    "redis-py (redis/)": ("site-packages/redis/",),
    "pydantic (pydantic/)": ("pydantic/", "pydantic_core/"),
    "structlog (structlog/)": ("structlog/",),
    "Prometheus client (prometheus_client/)": ("prometheus_client/",),
}


_HEADLINE = (
    ("encode (features/codec.py)", "features `encode`"),
    ("decode (features/codec.py)", "features `decode`"),
    ("apply_events (features/extractor.py)", "`apply_events`"),
    ("SnapshotRepository.load_many (features/repository.py)", "`load_many` (SQL + decode)"),
    ("SnapshotRepository.save_many (features/repository.py)", "`save_many` (encode + SQL)"),
    ("RedisFeatureStore.put_many (features/store.py)", "`put_many` (encode + Redis)"),
    ("FeatureConsumer._publish (features/consumer.py)", "`_publish` (processed_features)"),
    ("FeatureConsumer._decode (features/consumer.py)", "message decode"),
    ("KafkaSubscription.poll (bus/kafka.py)", "Kafka poll"),
)


def headline(path: Path) -> str:
    """The inclusive share of a few functions of the feature consumer, in one line."""
    counts = profile_counts(path, _GROUPS)
    own_n = counts.inclusive
    return ", ".join(
        f"{label} {100 * own_n[fn] / counts.total:.0f}%" for fn, label in _HEADLINE if own_n[fn]
    )


def summarize_speedscope(path: Path, top: int = 20) -> str:
    """% of busy samples per function (self and inclusive) and per group."""
    return summarize_profile(path, _GROUPS, top)


# --------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------
def _per_write(events: int, writes: int) -> str:
    if writes <= 0:
        return "snapshot writes not counted"
    return f"{writes:,} snapshot writes ({events / writes:.1f} events per write)"


def freshness_ok(result: Stream) -> bool:
    """p99 under the aim, at (about) the aimed rate, every probe seen."""
    fresh = result.freshness()
    return (
        bool(fresh)
        and percentile(fresh, 99) < AIM_FRESHNESS_P99_S
        and result.events_s >= 0.95 * AIM_RATE
        and not result.probe_timeouts
    )


def render(report: Report) -> str:
    args = report.args
    lines = [
        *report.run.head(START_MARKER, "Feature pipeline (`bench/features.py`)"),
        f"- Data: {report.world}. {report.preload}",
        "- Services: Postgres 15 (a fresh schema, dropped afterwards), Redis (a unique key prefix, "
        "deleted afterwards), Tansu (Kafka protocol, topics with the default 4 partitions). "
        "`recommender serve` runs with ENABLE_CONSUMERS=false throughout (the API and an outbox "
        "relay); one `recommender worker` consumes.",
        "- Throughput: one `recommender worker` with fresh consumer groups catches up from offset "
        "0; the feature group's committed offsets are polled every "
        f"{_SAMPLE_S * 1000:.0f} ms (aiokafka admin). events/s = events committed between the "
        "first and the last observed commit / that time (the worker's start-up and group join "
        "are outside the window). CPU µs/event = the worker's utime + stime (/proc/PID/stat) "
        "over the same window / those events. Cores busy: CPU-seconds per second of the window "
        "for the worker (in brackets: its threads runnable but waiting for a CPU), all Postgres "
        "processes, and the whole machine.",
        f"- Freshness: a Python asyncio httpx client posts pre-built batches of "
        f"{args.batch_size} events (the world's events after the pre-loaded ones: existing users "
        f"with history) to `POST /api/v1/events/batch`, one every "
        f"{args.batch_size / args.rate * 1000:.1f} ms on a fixed schedule (not waiting for the "
        f"previous answer) for {args.duration:.0f} s after a {args.warmup:.0f} s warm-up; one "
        f"probe every {args.probe_interval * 1000:.0f} ms (a watch event of a fresh user, "
        "`POST /api/v1/events/watch`) is followed in Redis (`MGET` of the pending probes' "
        f"`features:{{userId}}` every {args.poll_ms:.0f} ms) until it decodes to "
        "totalInteractions == 1. Freshness = seen in Redis minus the serverTimestamp of the API "
        "answer (same machine, same clock; resolution ≈ the poll period). Achieved rate = "
        "accepted events (batches + probes) / first send to last answer.",
        "",
        "| Measurement | Result | Aim | CPU per event "
        "| Cores busy: worker / Postgres / machine | Checks |",
        "|---|---|---|---|---:|---|",
    ]
    catch_up = report.catch_up
    if catch_up is not None:
        lines.append(
            f"| Consumer throughput, one worker catching up on {catch_up.total:,} events "
            f"| **{catch_up.events_s:,.0f} events/s** ({catch_up.events:,} events in "
            f"{catch_up.wall_s:.1f} s) "
            f"| ≥ {AIM_THROUGHPUT_EVENTS_S:,} events/s: "
            f"{verdict(catch_up.events_s >= AIM_THROUGHPUT_EVENTS_S)} "
            f"| {catch_up.cpu_us_per_event:,.0f} µs/event (worker process); "
            f"{_per_write(catch_up.total, catch_up.writes)} "
            f"| {cpu_text(catch_up.cpu)} "
            f"| first commit {catch_up.startup_s:.1f} s after the start; placeholder group done "
            f"after {catch_up.placeholders_s:.1f} s, feature group after "
            f"{catch_up.features_done_s:.1f} s |"
        )
    if report.profiled is not None:
        p = report.profiled
        lines.append(
            f"| Same, again under py-spy (extra run, snapshot and Redis cleared first) "
            f"| {p.events_s:,.0f} events/s | — | {p.cpu_us_per_event:,.0f} µs/event; "
            f"{_per_write(p.total, p.writes)} "
            f"| {cpu_text(p.cpu)} | py-spy at 100 Hz, --nonblocking |"
        )
    result = report.stream
    if result is not None:
        fresh = result.freshness()
        p99 = percentile(fresh, 99)
        ok = freshness_ok(result)
        events = result.accepted + result.probes_accepted
        worker_us = (
            result.cpu_worker.server * result.elapsed_s / events * 1e6
            if result.cpu_worker is not None and events
            else math.nan
        )
        kept_up = (
            f"consumer lag max {result.max_lag:,} events, outbox max {result.max_outbox:,} "
            "(sampled every 0.5 s), "
            f"{result.lag_at_end:,} at the end of input (outbox {result.outbox_at_end:,}), "
            f"0 after {result.drained_after_s:.2f} s"
            if not math.isnan(result.drained_after_s)
            else f"lag {result.lag_at_end:,} at the end of input, NOT drained within 60 s"
        )
        non_2xx = sum(n for s, n in result.statuses.items() if not 200 <= s < 300)
        lines.append(
            f"| Event→feature freshness at **{result.events_s:,.0f} events/s** achieved "
            f"(target {args.rate:,}) "
            f"| p50 **{percentile(fresh, 50) * 1000:,.0f} ms**, p99 **{p99 * 1000:,.0f} ms**, "
            f"max {max(fresh, default=math.nan) * 1000:,.0f} ms ({len(fresh)} probes) "
            f"| p99 < {AIM_FRESHNESS_P99_S:.0f} s at {AIM_RATE:,} events/s: {verdict(ok)} "
            f"| {worker_us:,.0f} µs/event (worker process); {_per_write(events, result.writes)}"
            f"; the API process: {cpu_text(result.cpu_serve).split(' ', 1)[0]} cores "
            f"| {cpu_text(result.cpu_worker)} "
            f"| {kept_up}; {non_2xx} non-2xx, {result.errors} client errors, "
            f"{result.rejected} rejected, {result.duplicates} duplicates, "
            f"{result.probe_timeouts} probes never seen; batch answer p50 "
            f"{percentile(sorted(result.latencies), 50) * 1000:.0f} ms, p99 "
            f"{percentile(sorted(result.latencies), 99) * 1000:.0f} ms |"
        )
        report.notes.append(
            f"Where the probes' time goes (p50 / p99 per stage; stage ends from the Kafka "
            "message's CreateTime, set by the relay's send(), and the snapshot row's updated_at, "
            f"set by the consumer before its commit): {stages_text(result)}."
        )
        worker_cpu, serve_cpu = result.cpu_worker, result.cpu_serve
        if worker_cpu is not None and serve_cpu is not None:
            report.notes.append(
                "Cores busy during the freshness window (CPU-seconds per second; in brackets: "
                f"runnable but waiting for a CPU): worker {worker_cpu.server:.2f} "
                f"(+{worker_cpu.server_waiting:.2f}), API {serve_cpu.server:.2f} "
                f"(+{serve_cpu.server_waiting:.2f}), Postgres {worker_cpu.postgres:.2f}, Tansu "
                f"{result.cpu_tansu:.2f}, the load client {result.client_cpu:.2f}; the whole "
                f"machine {worker_cpu.machine:.2f} of {os.cpu_count()}."
            )
        if result.late_sends:
            report.notes.append(
                f"{result.late_sends} batches went out more than one interval late (the load "
                "client could not keep its schedule)."
            )
    report.notes.append(
        "What runs in the worker: the feature consumer (group "
        "FEATURES_CONSUMER_GROUP), the catalog-placeholder consumer (its own group, reading the "
        "same events; the world's movies are in the catalog, so it only parses each message) and "
        "an outbox relay (idle during the catch-up; during the freshness run it competes with "
        "the API's relay for the relay lock, so either may publish). Its CPU includes all three, "
        "and the `processed_features` publishing of the feature consumer."
    )
    report.notes.append(
        "Snapshot writes = the growth of sum(user_features.version): one per user per "
        "micro-batch that changed the user (each is a decode, an apply, two encodes: snapshot "
        "row and Redis value, a Redis script call and a `processed_features` message)."
    )
    report.notes.append(
        "Consumer lag = events the outbox marked sent minus the feature group's committed "
        "offsets (Tansu's ListOffsets answered fewer messages than a consumer reads, so the "
        "topic's end offsets are not used)."
    )
    report.notes.append(
        "Freshness covers the whole path: the API's commit, the outbox relay (woken by the "
        "commit, lingering RELAY_LINGER_S = 20 ms), Kafka, the consumer's poll, the snapshot "
        "transaction and the Redis write."
    )
    return close_section(lines, [*report.notes, *report.profile_notes], END_MARKER)


# --------------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------------
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rate", type=int, default=AIM_RATE, help="Input events/s (step 3).")
    parser.add_argument("--duration", type=float, default=30, help="Seconds of steady input.")
    parser.add_argument("--warmup", type=float, default=5, help="Seconds of input before it.")
    parser.add_argument("--events", type=int, default=60_000, help="Events pre-loaded (step 1).")
    parser.add_argument("--users", type=int, default=3000, help="Users of the generated world.")
    parser.add_argument("--movies", type=int, default=400, help="Movies of the generated world.")
    parser.add_argument("--seed", type=int, default=7, help="World seed.")
    parser.add_argument("--batch-size", type=int, default=20, help="Events per paced request.")
    parser.add_argument("--probe-interval", type=float, default=0.1, help="Seconds per probe.")
    parser.add_argument("--poll-ms", type=float, default=5, help="Redis polling period (ms).")
    parser.add_argument(
        "--profile",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="Repeat the catch-up and the steady input under py-spy (extra runs, not in the "
        "table; default: each only when its aim is missed).",
    )
    parser.add_argument("--profile-top", type=int, default=20)
    parser.add_argument(
        "--profile-seconds", type=float, default=15, help="The extra steady-input run under py-spy."
    )
    parser.add_argument("--write", type=Path, help="Markdown file to update (docs/benchmarks.md).")
    add_store_args(parser)
    args = parser.parse_args(argv)
    if args.rate < 1 or args.duration < 1 or args.events < 1000 or args.batch_size < 1:
        parser.error("--rate, --duration ≥ 1, --events ≥ 1000, --batch-size ≥ 1")
    if args.batch_size > 1000:
        parser.error("--batch-size is at most 1000 (the batch API's limit)")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # SIGTERM (e.g. `timeout`) unwinds like Ctrl-C, so the finally blocks stop every process and
    # drop the schema.
    report = Report(args, Run.of("bench/features.py", argv))
    schema = f"bench_{uuid.uuid4().hex[:12]}"
    interval = args.batch_size / args.rate
    warm_batches = math.ceil(args.warmup / interval)
    batches = math.ceil(args.duration / interval)
    spy_batches = math.ceil(args.profile_seconds / interval)
    needed = args.events + (warm_batches + batches + spy_batches + 1) * args.batch_size

    with workspace(report.run, "features", args.database_url, args.redis_url) as (stack, space):
        work, logs, schema, prefix = space.work, space.logs, space.schema, space.redis_prefix

        generated = time.perf_counter()
        world, days = make_world(args, needed)
        users_preloaded = len({e["userId"] for e in world.events[: args.events]})
        report.world = (
            f"`generate_world(seed={args.seed}, users={args.users}, movies={args.movies}, "
            f"days={days})`, {len(world.events):,} events ({time.perf_counter() - generated:.1f} s "
            f"to generate); the first {args.events:,} by clientTimestamp ({users_preloaded:,} "
            f"users) are pre-loaded, the next {(warm_batches + batches) * args.batch_size:,} are "
            "the steady input"
        )
        print(f"[bench] world: {report.world}", file=sys.stderr)

        kafka = start_kafka(stack, logs)

        from interaction_recommender.bus import Topics

        topic = Topics.with_prefix(f"{schema}.").interaction_events
        env = service_env(args, schema, kafka, work / "var")

        # The API (and a relay), never consuming.
        port = free_port()
        serve = stack.enter_context(
            server(
                [str(VENV_BIN / "recommender"), "serve", "--port", str(port)],
                {**env, "ENABLE_CONSUMERS": "false"},
                logs / "serve.log",
                f"http://127.0.0.1:{port}/api/v1/health/ready",
                "service (ENABLE_CONSUMERS=false)",
            )
        )
        api = f"http://127.0.0.1:{port}/api/v1"

        # 1. Pre-load and publish.
        stored, load_s = preload(args, world, env, work, logs)
        publish_s = asyncio.run(wait_published(args.database_url, schema, topic, stored))
        report.preload = (
            f"Pre-load: {stored:,} events stored by `recommender demo load` in {load_s:.1f} s, "
            f"all published by the API's relay {publish_s:.1f} s later (no pending outbox row, "
            "every event's row marked sent) before any consumer started."
        )
        print(f"[bench] {report.preload}", file=sys.stderr)

        # 2. Throughput.
        env_a = worker_env(env, "a")
        log_a = logs / "worker-a.log"
        worker_a = stack.enter_context(worker(env_a, log_a, "worker A"))
        report.catch_up = run_catch_up(
            kafka, topic, env_a, stored, worker_a, log_a, time.perf_counter()
        )
        report.catch_up.writes = snapshot_writes(args.database_url, schema)
        consuming, consuming_env, consuming_log = worker_a, env_a, log_a

        profile = args.profile
        if profile is None:
            profile = report.catch_up.events_s < AIM_THROUGHPUT_EVENTS_S
        if profile:
            stop_process(worker_a, "worker A")
            pg(args.database_url, f"TRUNCATE {schema}.user_features")
            delete_redis_keys(args.redis_url, f"{prefix}features:")
            env_b = worker_env(env, "b")
            log_b = logs / "worker-b.log"
            worker_b = stack.enter_context(worker(env_b, log_b, "worker B (py-spy)"))
            spy = Spy(worker_b.pid, logs / "worker-catch-up.speedscope.json")
            stack.callback(spy.stop)
            report.profiled = run_catch_up(
                kafka, topic, env_b, stored, worker_b, log_b, time.perf_counter(), spy.start
            )
            spy.stop()
            report.profiled.writes = snapshot_writes(args.database_url, schema)
            report.profile_notes.append(
                f"py-spy on the worker during the catch-up (inclusive share of busy samples): "
                f"{spy.headline()}."
            )
            report.hotspots = "### Worker profile during the catch-up (py-spy)\n\n" + spy.summary(
                args.profile_top
            )
            consuming, consuming_env, consuming_log = worker_b, env_b, log_b

        # 3. Freshness.
        rest = world.events[args.events :]
        warm_bodies = batch_bodies(rest[: warm_batches * args.batch_size], args.batch_size)
        measured = rest[warm_batches * args.batch_size :]
        bodies = batch_bodies(measured[: batches * args.batch_size], args.batch_size)
        spy_bodies = batch_bodies(
            measured[batches * args.batch_size : (batches + spy_batches) * args.batch_size],
            args.batch_size,
        )
        movies = [m["movieId"] for m in world.movies]
        probe_count = int(args.duration / args.probe_interval)
        common = {
            "schema": schema,
            "kafka": kafka,
            "topic": topic,
            "group": consuming_env["FEATURES_CONSUMER_GROUP"],
            "worker_pid": consuming.pid,
            "serve_pid": serve.pid,
        }
        run_stream(
            args,
            api,
            warm_bodies,
            make_probes(int(args.warmup / args.probe_interval), movies, args.seed + 1),
            label="freshness warm-up",
            **common,
        )
        _check_alive(consuming, "worker", consuming_log)
        report.stream = run_stream(
            args,
            api,
            bodies,
            make_probes(probe_count, movies, args.seed),
            label="freshness",
            **common,
        )
        report.run.done()
        if args.profile or (args.profile is None and not freshness_ok(report.stream)):
            spy = Spy(consuming.pid, logs / "worker-steady.speedscope.json")
            stack.callback(spy.stop)
            spy.start()
            run_stream(args, api, spy_bodies, [], label="steady input under py-spy", **common)
            spy.stop()
            report.profile_notes.append(
                f"py-spy on the worker under the steady input (an extra {args.profile_seconds:.0f}"
                f" s run at {args.rate:,} events/s, not in the table; inclusive share of busy "
                f"samples): {spy.headline()}."
            )
            report.hotspots += (
                f"\n\n### Worker profile under the steady input (py-spy, an extra "
                f"{args.profile_seconds:.0f} s run at {args.rate:,} events/s)\n\n"
                + spy.summary(args.profile_top)
            )

    publish(render(report), args.write, START_MARKER, END_MARKER)
    publish_hotspots(report.hotspots, logs)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
