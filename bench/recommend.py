"""Recommendation serving benchmark: GET /api/v1/recommend/{userId} under load, cache miss and
cache hit, beside a bare FastAPI endpoint answering 20 fixed items, in one run.

    .venv/bin/python bench/recommend.py [--duration 20] [--connections 32] [--users 100000]
                                        [--movies 10000] [--profile DIR]
                                        [--write docs/benchmarks.md]

Set-up (not timed):

1. A synthetic world, `demo.world.generate_world(seed, movies=--movies, users=--train-users,
   days=--train-days)`. The model is trained on it by the service's own command,
   `recommender train --events-file WORLD` (train_model: tuning, holdout evaluation, the
   production fit; ALS only above EASE_MAX_ITEMS movies), into a temporary MODEL_PATH.
2. Postgres: a fresh schema, migrated and loaded with the world's movies (and no event) by
   `recommender demo load` (the catalog upsert path); dropped at the end.
3. Redis: --users users' features under a unique REDIS_KEY_PREFIX (deleted at the end), written
   with the service's own FeatureStore (`RedisFeatureStore.put_many`, the consumer's encoding).
   Each user gets a synthetic history built by the service's extractor (`build_features`) from
   generated events: 5-60 distinct watched movies (log-uniform, median ~17), 70% of them from
   1-3 favourite genres, all drawn by the world's popularity; 65% watched to completion, the
   rest partly; ratings for about a third, a few favourites and 0-4 searches, over the last 90
   days. Built in --feature-workers processes.

Runs (one uvicorn process each, uvloop + httptools; `recommender serve` with its defaults:
Postgres, Redis, the broker (Tansu), the consumers inside `serve`, the access log, the impression
log and the near cache):

1. Bare: bench/bare_app.py's GET /recommend/{userId} (20 fixed items in the shape of the
   service's RecommendationResponse), wrk with bench/wrk_recommend.lua.
2. The service, with --event-rate watch events per second streamed on the benchmark users from
   a thread of this process during every run below (they change features: the consumers write
   them, the writer's invalidation reaches the near cache, the Redis lists go stale):
   - sample check: a fresh user's answer has 20 distinct movies, a policy that is not
     `*:fallback`, `cached: false`, then `cached: true` when asked again; /model/info says
     `loaded`. The run stops if not.
   - cache miss: the cached lists are deleted, then wrk (bench/wrk_recommend.lua) takes the
     users in order, each at most once per run (a warm-up run, then the measured run going on
     from where it stopped), context=home, k=20.
   - hit workload: --hit-draws requests drawn Zipf(--zipf) over all --users users, wrk cycling
     over them from a cold cache (warm-up, then the measured run); the share each cache tier
     (near, Redis, engine) answered comes from the service's counters.
   - fixed rate: half the cache-miss rate just measured (its misses/s: answers that went
     through the engine; under overload some answers come from the fallback path instead, which
     would inflate req/s), as an open loop: wrk cannot hold a rate and wrk2 is not packaged by
     Debian, so a Python asyncio (uvloop) client in this
     process sends each request at its scheduled instant over --connections keep-alive
     connections (a request waits in a queue when all are busy) and measures latency from the
     scheduled instant, not from the send, so a slow answer cannot hide the requests queued
     behind it (no coordinated omission). Fresh users again (lists deleted first), after a
     warm-up at the same rate.
   - the fixed-rate run again once one movie is the catalog's latest change (its updated_at
     set to now() in Postgres; a labelled extra row, --no-catalog-touch-run leaves it out).
     The service's catalog poll (every CATALOG_POLL_S) re-reads each movie whose updated_at
     lies within 10 s of the newest one: after the bulk load that is every movie, at every poll;
     after the touch, one movie. The two fixed-rate rows differ by that alone.
3. The service again with IMPRESSION_LOGGING=false and no events streaming: cache miss as above
   (labelled extra row).
4. Bare again; ratios use the mean of both bare runs.

The measured hit rate of every service run comes from the service's own counter
(recommend_cache_total{result} on /metrics, before and after the measured run); fallbacks
(recommend_fallbacks_total) and impressions written (impressions_written_total) likewise.
--profile DIR: py-spy records the service under extra cache-miss and cache-hit wrk runs (not
in the table) and prints the hotspots (also written to DIR/hotspots.md).
Prints a markdown section; --write replaces the section between the bench:recommend markers of
the given file (appended if it has no markers). Every process it starts is stopped in a finally
block; the schema is dropped and the run's Redis keys are deleted. Logs go to
bench/results/recommend-<time>/ (git-ignored).
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import contextlib
import gc
import json
import math
import os
import re
import statistics
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from random import Random
from typing import Any, NamedTuple

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/ingest.py, bench/report.py

import ingest
from ingest import BENCH, ROOT, VENV_BIN, CpuMeter, WrkResult, pg
from report import Run, close_section, markers, percentile, publish, publish_hotspots, verdict


def section(movies: int) -> tuple[str, str]:
    """The 10,000-movie run is the headline section; other catalog sizes get their own."""
    return markers("recommend" if movies == 10_000 else f"recommend-{movies // 1000}k")


AIM_MISS_RATIO = 0.40
AIM_MISS_RATIO_LARGE = 0.20  # above 10,000 movies (the aim at 100,000)
AIM_HIT_RATIO = 0.70
AIM_FIXED_P99_MS = 25.0
K = 20
QUERY = f"?context=home&k={K}"
SERVICE_PATH = "/api/v1/recommend/"
BARE_PATH = "/recommend/"
WRK_SCRIPT = BENCH / "wrk_recommend.lua"
CATALOG_POLL_S = 2.0  # Settings().catalog_poll_s, the service's default

_GROUPS: dict[str, tuple[str, ...]] = {
    "recommendation service (recs/service.py)": ("interaction_recommender/recs/service",),
    "engine (model/engine.py)": ("interaction_recommender/model/engine",),
    "hydration: Redis GET + HGET (recs/hydration.py)": ("interaction_recommender/recs/hydration",),
    "profile decode (features/profile.py)": ("interaction_recommender/features/profile",),
    "labels (model/labels.py)": ("interaction_recommender/model/labels",),
    "cached lists (recs/cached_list.py)": ("interaction_recommender/recs/cached_list",),
    "near cache (recs/near_cache.py)": ("interaction_recommender/recs/near_cache",),
    "catalog view lookups (model/catalog_view.py)": ("interaction_recommender/model/catalog_view",),
    "impression log (feedback/)": ("interaction_recommender/feedback/",),
    "endpoint (recs/endpoints.py)": ("interaction_recommender/recs/endpoints",),
    "edge middleware (http.py)": ("interaction_recommender/http",),
    "redis-py (redis/)": ("site-packages/redis/",),
    "numpy (numpy/)": ("numpy/",),
    "pydantic (pydantic/)": ("pydantic/", "pydantic_core/"),
    "FastAPI + Starlette routing (fastapi/, starlette/)": ("fastapi/", "starlette/"),
    "uvicorn + httptools (uvicorn/)": ("uvicorn/",),
    "asyncpg (asyncpg/)": ("asyncpg/",),
    "SQLAlchemy (sqlalchemy/)": ("sqlalchemy/",),
    "structlog (structlog/)": ("structlog/",),
    "Prometheus client (prometheus_client/)": ("prometheus_client/",),
    "uuid (uuid.py)": ("/uuid.py",),
}


# --------------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------------
@dataclass
class Counts:
    """The service's own counters over a measured run (/metrics, after minus before)."""

    near: int
    hits: int
    misses: int
    fallbacks: int
    impressions: int | None  # None: the build has no impressions_written_total
    dropped: int | None

    @property
    def hit_rate(self) -> float:
        """Answers from a cache (the near cache or Redis) over all answers."""
        total = self.near + self.hits + self.misses
        return (self.near + self.hits) / total if total else math.nan

    def text(self) -> str:
        total = self.near + self.hits + self.misses
        shares = "/".join(
            f"{n / total:.0%}" if total else "-" for n in (self.near, self.hits, self.misses)
        )
        text = (
            f"{self.hit_rate:.1%} cached; near/Redis/engine {shares} ({self.near:,} near, "
            f"{self.hits:,} Redis hits, {self.misses:,} misses)"
        )
        if self.fallbacks:
            text += f", {self.fallbacks:,} fallbacks"
        return text


@dataclass
class OpenLoop:
    """A fixed-rate run: latency from each request's scheduled instant."""

    rate: float
    connections: int
    scheduled: int
    latencies_ms: list[float]  # sorted, completed requests only
    lags_ms: list[float]  # sorted: send instant minus scheduled instant
    statuses: Counter[int]
    errors: int
    duration_s: float
    client_cpu: float = math.nan
    cpu: Any = None
    counts: Counts | None = None

    @property
    def achieved(self) -> float:
        return len(self.latencies_ms) / self.duration_s if self.duration_s else 0.0

    @property
    def non_2xx(self) -> int:
        return sum(n for s, n in self.statuses.items() if not 200 <= s < 300)

    def pct(self, p: float) -> float:
        return percentile(self.latencies_ms, p)


@dataclass
class Measured:
    """A closed-loop (wrk) run and the service's counters over it."""

    label: str
    result: WrkResult
    counts: Counts | None = None


@dataclass
class Report:
    args: argparse.Namespace
    run: Run
    setup: list[str] = field(default_factory=list)
    sample: str = ""
    bare: Measured | None = None
    bare_after: Measured | None = None
    miss: Measured | None = None
    hit: Measured | None = None
    fixed: OpenLoop | None = None
    fixed_touched: OpenLoop | None = None
    miss_off: Measured | None = None
    notes: list[str] = field(default_factory=list)
    hotspots: str = ""


# --------------------------------------------------------------------------------------------
# Set-up: the world, the model, the catalog
# --------------------------------------------------------------------------------------------
def base_env(
    args: argparse.Namespace, schema: str, prefix: str, work: Path, kafka: Any
) -> dict[str, str]:
    """The service's defaults: the access log, the impression log, the consumers inside
    `serve`, the broker (Tansu), Postgres and Redis."""
    env = ingest.service_env(args, schema, kafka, work / "var", access_log=True)
    env.update(dict(item.split("=", 1) for item in args.service_env))
    env.update(
        REDIS_KEY_PREFIX=prefix,
        MODEL_PATH=str(work / "model" / "recommender.pkl"),
        ENABLE_CONSUMERS="true",
        DEMO_DATA="false",
        TRAIN_THREADS=str(args.train_threads),
    )
    return env


class EventStream:
    """Watch events at a fixed rate on the benchmark users, from a thread of this process,
    while the measured runs go on: each changes a user's features (the consumers inside
    `serve` write them, the writer's invalidation reaches the near cache), so every cache tier
    and its invalidation are exercised as in production."""

    def __init__(
        self, base: str, users: list[str], movies: list[str], rate: float, seed: int
    ) -> None:
        import threading

        self._base, self._users, self._movies, self._rate = base, users, movies, rate
        self._random = Random(f"{seed}/stream")
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._send, name="event-stream", daemon=True)
        self.sent = self.failed = 0

    def __enter__(self) -> EventStream:
        if self._rate > 0:
            self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(10)
        print(f"[bench] event stream: {self.sent:,} sent, {self.failed:,} failed", file=sys.stderr)

    def _send(self) -> None:
        import httpx

        interval = 1.0 / self._rate
        due = time.monotonic()
        with httpx.Client(base_url=self._base, timeout=10) as client:
            while not self._stop.is_set():
                due += interval
                body = {
                    "requestId": str(uuid.uuid4()),
                    "userId": self._random.choice(self._users),
                    "movieId": self._random.choice(self._movies),
                    "clientTimestamp": datetime.now(UTC).isoformat(),
                    "metadata": {
                        "watchDuration": self._random.randint(60, 7200),
                        "progressPercent": float(self._random.choice((10, 40, 75, 100))),
                        "sessionId": str(uuid.uuid4()),
                        "device": "web",
                    },
                }
                try:
                    ok = client.post("/api/v1/events/watch", json=body).status_code == 200
                except httpx.HTTPError:
                    ok = False
                self.sent += ok
                self.failed += not ok
                self._stop.wait(max(0.0, due - time.monotonic()))


def zipf_users(ids: list[str], draws: int, exponent: float, seed: int) -> list[str]:
    """``draws`` requests over ``ids`` with Zipf(exponent) popularity (rank r drawn with weight
    r^-exponent; the ranks are a random order of the users)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    weights = 1.0 / np.arange(1, len(ids) + 1) ** exponent
    order = rng.permutation(len(ids))
    picks = rng.choice(len(ids), size=draws, p=weights / weights.sum())
    return [ids[order[p]] for p in picks]


def run_cli(argv: list[str], env: dict[str, str], log: Path, timeout: float) -> str:
    """`recommender ...` to completion; its stdout (stderr goes to the log)."""
    print(f"[bench] {' '.join(argv[1:])} (log {log})", file=sys.stderr)
    with log.open("ab") as err:
        process = subprocess.Popen(
            argv, env=env, stdout=subprocess.PIPE, stderr=err, cwd=ROOT, text=True
        )
        try:
            out, _ = process.communicate(timeout=timeout)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait(10)
    if process.returncode != 0:
        tail = log.read_text(errors="replace")[-3000:]
        raise RuntimeError(f"{argv[1:]} exited with {process.returncode}:\n{tail}")
    return out


def last_json(text: str) -> dict[str, Any]:
    for line in reversed(text.strip().splitlines()):
        with contextlib.suppress(ValueError):
            value = json.loads(line)
            if isinstance(value, dict):
                return value
    raise RuntimeError(f"no JSON line in {text[-500:]!r}")


# --------------------------------------------------------------------------------------------
# Set-up: users' features in Redis
# --------------------------------------------------------------------------------------------
class Histories:
    """Synthetic users' events over a catalog, by popularity and favourite genres."""

    def __init__(self, catalog: list[Any], popularity: dict[str, int], end: datetime) -> None:
        self.catalog = catalog
        self.end = end
        weights = [popularity.get(str(m.movie_id), 0) + 1.0 for m in catalog]
        self.all = (list(range(len(catalog))), _cumulative(weights))
        members: dict[str, list[int]] = {}
        for index, movie in enumerate(catalog):
            for genre in movie.genres:
                members.setdefault(genre, []).append(index)
        self.genres = sorted(members)
        self.genre_weights = _cumulative([len(members[g]) for g in self.genres])
        self.by_genre = {
            g: (indices, _cumulative([weights[i] for i in indices]))
            for g, indices in members.items()
        }

    def _draw(self, rng: Random, pool: tuple[list[int], list[float]]) -> int:
        indices, cumulative = pool
        return indices[bisect.bisect(cumulative, rng.random() * cumulative[-1]) - 1]

    def events(self, user_id: uuid.UUID, seed: str) -> tuple[list[tuple[Any, Any]], int]:
        """(event, catalog movie) pairs in sequence order, and the distinct movies watched."""
        from interaction_recommender.events.schemas import EventType

        rng = Random(seed)
        wanted = round(math.exp(rng.uniform(math.log(5), math.log(60.5))))
        favourites = [
            self.genres[bisect.bisect(self.genre_weights, rng.random() * self.genre_weights[-1])]
            for _ in range(rng.randint(1, 3))
        ]
        picked: list[int] = []
        chosen: set[int] = set()
        for _ in range(wanted * 20):
            if len(picked) == wanted:
                break
            pool = self.by_genre[rng.choice(favourites)] if rng.random() < 0.7 else self.all
            index = self._draw(rng, pool)
            if index not in chosen:
                chosen.add(index)
                picked.append(index)
        window_s = 90 * 86_400
        raw: list[tuple[float, EventType, int | None, dict[str, Any]]] = []
        for index in picked:
            at = rng.uniform(0, window_s - 3600)
            movie = self.catalog[index]
            completed = rng.random() < 0.65
            progress = 100.0 if completed else round(rng.uniform(5.0, 89.0), 1)
            length = (movie.duration_minutes or 100) * 60
            raw.append(
                (
                    at,
                    EventType.WATCH,
                    index,
                    {
                        "watchDuration": int(length * progress / 100),
                        "progressPercent": progress,
                        "device": rng.choice(("tv", "web", "mobile")),
                        "quality": rng.choice(("1080p", "4k", "720p")),
                        "sessionId": f"s-{rng.getrandbits(48):x}",
                    },
                )
            )
            if completed and rng.random() < 0.5:
                rating = rng.choice((2.0, 3.0, 3.5, 4.0, 4.0, 4.5, 5.0, 5.0))
                raw.append((at + 600, EventType.RATING, index, {"rating": rating}))
            if completed and rng.random() < 0.08:
                raw.append((at + 700, EventType.FAVORITE, index, {"action": "add"}))
        for _ in range(rng.randint(0, 4)):
            title = (self.catalog[self._draw(rng, self.all)].title or "movie").split()
            query = rng.choice(favourites).lower() if rng.random() < 0.4 else rng.choice(title)
            raw.append((rng.uniform(0, window_s), EventType.SEARCH, None, {"query": query}))
        raw.sort(key=lambda item: item[0])
        start = self.end - timedelta(seconds=window_s)
        pairs = []
        request_id = uuid.UUID(int=1, version=4)
        for sequence, (at, kind, index, metadata) in enumerate(raw, start=1):
            movie = self.catalog[index] if index is not None else None
            when = start + timedelta(seconds=at)
            movie_id = movie.movie_id if movie is not None else None
            event = _Event(
                sequence, request_id, request_id, kind, user_id, movie_id, when, when, metadata
            )
            pairs.append((event, movie))
        return pairs, len(picked)


class _Event(NamedTuple):
    """The attributes of an EventMessage that `build_features` reads (EventMessage's pydantic
    construction alone would cost more than the extraction)."""

    sequence: int
    event_id: uuid.UUID
    request_id: uuid.UUID
    event_type: Any
    user_id: uuid.UUID
    movie_id: uuid.UUID | None
    client_timestamp: datetime
    server_timestamp: datetime
    metadata: dict[str, Any] = {}


def _cumulative(weights: list[float]) -> list[float]:
    total, out = 0.0, []
    for weight in weights:
        total += weight
        out.append(total)
    return out


_WRITER: dict[str, Any] = {}  # set before the feature workers fork


def _write_features(task: tuple[int, list[str]]) -> dict[str, Any]:
    """A worker: build and store the features of one chunk of users; returns their stats."""
    import redis.asyncio

    from interaction_recommender.features.codec import encode
    from interaction_recommender.features.extractor import build_features
    from interaction_recommender.features.store import RedisFeatureStore

    first, user_ids = task
    histories: Histories = _WRITER["histories"]
    watched: list[int] = []
    events = 0
    sizes = 0

    async def run() -> None:
        nonlocal events, sizes
        client = redis.asyncio.Redis.from_url(_WRITER["url"])
        store = RedisFeatureStore(client, prefix=_WRITER["prefix"], ttl_s=_WRITER["ttl_s"])
        try:
            for start in range(0, len(user_ids), 500):
                features, encoded = [], {}
                for offset, text in enumerate(user_ids[start : start + 500]):
                    user_id = uuid.UUID(text)
                    seed = f"{_WRITER['seed']}/user/{first + start + offset}"
                    pairs, distinct = histories.events(user_id, seed)
                    built = build_features(user_id, pairs)
                    features.append(built)
                    encoded[user_id] = encode(built)
                    watched.append(distinct)
                    events += len(pairs)
                    sizes += len(encoded[user_id])
                await store.put_many(features, encoded)
        finally:
            await client.aclose()

    asyncio.run(run())
    return {"watched": watched, "events": events, "bytes": sizes}


def write_features(
    args: argparse.Namespace, prefix: str, users: list[str], histories: Histories
) -> dict[str, Any]:
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    from interaction_recommender.settings import Settings

    _WRITER.update(
        histories=histories,
        url=args.redis_url,
        prefix=prefix,
        ttl_s=Settings().features_ttl_s,
        seed=args.seed,
    )
    chunk = 5000
    tasks = [(start, users[start : start + chunk]) for start in range(0, len(users), chunk)]
    watched: list[int] = []
    events = sizes = 0
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(args.feature_workers, mp_context=context) as pool:
        for done, stats in enumerate(pool.map(_write_features, tasks), start=1):
            watched += stats["watched"]
            events += stats["events"]
            sizes += stats["bytes"]
            if done % 4 == 0 or done == len(tasks):
                print(f"[bench] features: {len(watched):,} users written", file=sys.stderr)
    watched.sort()
    return {"watched": watched, "events": events, "bytes": sizes}


# --------------------------------------------------------------------------------------------
# The service's counters
# --------------------------------------------------------------------------------------------
def scrape(base: str) -> dict[str, float]:
    import httpx

    values: dict[str, float] = {}
    for line in httpx.get(f"{base}/metrics", timeout=10).text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            with contextlib.suppress(ValueError):
                values[name] = float(value)
    return values


def counts_between(before: dict[str, float], after: dict[str, float]) -> Counts:
    def delta(name: str) -> int:
        return round(after.get(name, 0.0) - before.get(name, 0.0))

    def summed(prefix: str) -> int:
        names = {n for n in (*before, *after) if n.startswith(prefix)}
        return sum(delta(n) for n in names)

    has_impressions = "impressions_written_total" in after
    return Counts(
        near=delta('recommend_cache_total{result="near"}'),
        hits=delta('recommend_cache_total{result="hit"}'),
        misses=delta('recommend_cache_total{result="miss"}'),
        fallbacks=summed("recommend_fallbacks_total{"),
        impressions=delta("impressions_written_total") if has_impressions else None,
        dropped=delta("impressions_dropped_total") if has_impressions else None,
    )


# --------------------------------------------------------------------------------------------
# Load: wrk (closed loop) and the open-loop client
# --------------------------------------------------------------------------------------------
class Users:
    """A file of user ids for wrk_recommend.lua and where the next run starts in it."""

    def __init__(self, path: Path, ids: list[str]) -> None:
        self.path = path
        self.ids = ids
        self.cursor = 0
        path.write_text("\n".join(ids) + "\n")

    def script_args(self, path_prefix: str) -> list[str]:
        return [str(self.path), str(self.cursor), path_prefix, QUERY]

    def advance(self, result: WrkResult, connections: int) -> None:
        # wrk may have asked for up to one request per connection more than it completed.
        self.cursor += result.requests + connections


def closed_loop(
    args: argparse.Namespace,
    base: str,
    label: str,
    users: Users,
    pid: int,
    path_prefix: str = SERVICE_PATH,
    metrics: bool = True,
) -> Measured:
    """A wrk warm-up run, then the measured run going on from where it stopped."""
    warm = ingest.run_wrk(
        args,
        base,
        args.warmup,
        f"{label} (warm-up)",
        WRK_SCRIPT,
        users.script_args(path_prefix),
    )
    users.advance(warm, args.connections)
    before = scrape(base) if metrics else {}
    meter = CpuMeter(pid)
    result = ingest.run_wrk(
        args, base, args.duration, label, WRK_SCRIPT, users.script_args(path_prefix)
    )
    result.cpu = meter.stop()
    users.advance(result, args.connections)
    counts = counts_between(before, scrape(base)) if metrics else None
    print(
        f"[bench] {label}: cores busy server/postgres/machine {result.cpu.text()}"
        + (f"; cache {counts.text()}" if counts else ""),
        file=sys.stderr,
    )
    return Measured(label, result, counts)


async def _open_loop(
    host: str, port: int, requests: list[bytes], rate: float, connections: int
) -> OpenLoop:
    clock = time.perf_counter
    queue: asyncio.Queue[tuple[int, float] | None] = asyncio.Queue()
    latencies: list[float] = []
    lags: list[float] = []
    statuses: Counter[int] = Counter()
    errors = 0

    async def connection() -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection(host, port)
        try:
            while (item := await queue.get()) is not None:
                index, scheduled = item
                lags.append(clock() - scheduled)
                try:
                    writer.write(requests[index])
                    head = await reader.readuntil(b"\r\n\r\n")
                    length = 0
                    for line in head.split(b"\r\n")[1:]:
                        name, _, value = line.partition(b":")
                        if name.strip().lower() == b"content-length":
                            length = int(value)
                    await reader.readexactly(length)
                except (OSError, asyncio.IncompleteReadError, ValueError):
                    errors += 1
                    writer.close()
                    reader, writer = await asyncio.open_connection(host, port)
                    continue
                latencies.append(clock() - scheduled)
                statuses[int(head[9:12])] += 1
        finally:
            writer.close()

    workers = [asyncio.create_task(connection()) for _ in range(connections)]
    await asyncio.sleep(0.2)  # connections open
    start = clock() + 0.01
    for index in range(len(requests)):
        scheduled = start + index / rate
        delay = scheduled - clock()
        if delay > 0:
            await asyncio.sleep(delay)
        queue.put_nowait((index, scheduled))
    for _ in workers:
        queue.put_nowait(None)
    await asyncio.gather(*workers)
    elapsed = clock() - start
    return OpenLoop(
        rate=rate,
        connections=connections,
        scheduled=len(requests),
        latencies_ms=sorted(s * 1000 for s in latencies),
        lags_ms=sorted(s * 1000 for s in lags),
        statuses=statuses,
        errors=errors,
        duration_s=elapsed,
    )


def max_miss_rate(measured: Measured) -> float:
    """Engine-path answers per second at full load: cache misses only (under overload, answers
    from the fallback path, which skip the engine, would inflate req/s)."""
    result, counts = measured.result, measured.counts
    if counts is None or not counts.misses:
        return result.req_s
    return counts.misses / result.duration_s


def open_loop(
    args: argparse.Namespace,
    port: int,
    users: Users,
    rate: float,
    seconds: float,
    label: str,
    path_prefix: str = SERVICE_PATH,
) -> OpenLoop:
    import uvloop

    count = max(1, round(rate * seconds))
    ids = [users.ids[(users.cursor + i) % len(users.ids)] for i in range(count)]
    users.cursor += count
    host = f"127.0.0.1:{port}".encode()
    requests = [
        b"GET %s%s%s HTTP/1.1\r\nHost: %s\r\n\r\n"
        % (path_prefix.encode(), i.encode(), QUERY.encode(), host)
        for i in ids
    ]
    print(f"[bench] {label}: {count:,} requests at {rate:,.0f} req/s", file=sys.stderr)
    gc.collect()
    cpu, wall = time.process_time(), time.perf_counter()
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        result = runner.run(_open_loop("127.0.0.1", port, requests, rate, args.connections))
    result.client_cpu = (time.process_time() - cpu) / (time.perf_counter() - wall)
    print(
        f"[bench] {label}: {result.achieved:,.0f} req/s answered, p50 {result.pct(50):.2f} ms, "
        f"p99 {result.pct(99):.2f} ms, max {result.pct(100):.2f} ms; send lag p99 "
        f"{percentile(result.lags_ms, 99):.2f} ms; statuses {dict(result.statuses)}, errors "
        f"{result.errors}; client {result.client_cpu:.2f} cores",
        file=sys.stderr,
    )
    return result


# --------------------------------------------------------------------------------------------
# The service
# --------------------------------------------------------------------------------------------
@contextlib.contextmanager
def service(
    env: dict[str, str], logging_on: bool, logs: Path
) -> Iterator[tuple[subprocess.Popen[bytes], str, int]]:
    port = ingest.free_port()
    flag = "true" if logging_on else "false"
    with ingest.server(
        [str(VENV_BIN / "recommender"), "serve", "--port", str(port)],
        {**env, "IMPRESSION_LOGGING": flag},
        logs / f"service-impression-logging-{flag}.log",
        f"http://127.0.0.1:{port}/api/v1/health/ready",
        f"service (IMPRESSION_LOGGING={flag})",
    ) as process:
        yield process, f"http://127.0.0.1:{port}", port


def touch_one_movie(url: str, schema: str) -> None:
    """Make one movie the catalog's latest change (updated_at = now()).

    CatalogCache.refresh re-reads every movie whose updated_at lies within 10 s (its overlap) of
    the newest one, at every poll (CATALOG_POLL_S). After a bulk load all movies share about one
    updated_at, so every poll re-reads the whole catalog; once a single later change is the
    newest, a poll re-reads just that movie."""
    assert re.fullmatch(r"bench_[0-9a-f]{12}", schema)
    pg(
        url,
        f"UPDATE {schema}.movies SET updated_at = now() "  # noqa: S608
        f"WHERE movie_id = (SELECT movie_id FROM {schema}.movies ORDER BY movie_id LIMIT 1) "
        "RETURNING 1",
    )


def sample_check(base: str, user: str) -> str:
    """A fresh user's answer: 20 real recommendations, then the same list from a cache."""
    import httpx

    info = httpx.get(f"{base}/api/v1/model/info", timeout=10).json()
    url = f"{base}{SERVICE_PATH}{user}{QUERY}"
    first = httpx.get(url, timeout=10)
    time.sleep(0.3)  # the list is stored after the answer
    again = httpx.get(url, timeout=10)
    body, cached = first.json(), again.json()
    movies = [item["movieId"] for item in body.get("recommendations", [])]
    problems = []
    if info.get("status") != "loaded":
        problems.append(f"model status {info.get('status')!r} ({info.get('lastError')})")
    if first.status_code != 200 or len(set(movies)) != K:
        problems.append(f"status {first.status_code}, {len(set(movies))} distinct movies")
    if str(body.get("policy", "")).endswith(":fallback"):
        problems.append(f"policy {body.get('policy')!r}")
    if body.get("cached") is not False or cached.get("cached") is not True:
        problems.append(f"cached {body.get('cached')} then {cached.get('cached')}")
    if [i["movieId"] for i in cached.get("recommendations", [])] != movies:
        problems.append("the cached list differs from the computed one")
    if problems:
        raise RuntimeError(f"sample check failed: {'; '.join(problems)}: {first.text[:1000]}")
    reasons = Counter(r.split(":", 1)[0] for i in body["recommendations"] for r in i["reasons"])
    return (
        f"model `{info.get('version')}` loaded; a fresh user's answer: {len(movies)} distinct "
        f"movies, policy `{body['policy']}`, `cached: false` ({len(first.content):,} bytes), "
        f"then the same list with `cached: true`; reasons used: "
        + ", ".join(f"{name} {n}" for name, n in reasons.most_common())
    )


def open_loop_detail(result: OpenLoop, which: str) -> str:
    over = sum(1 for v in result.latencies_ms if v > AIM_FIXED_P99_MS)
    lags = result.lags_ms
    return (
        f"The {which} in detail: {result.scheduled:,} requests scheduled at "
        f"{result.rate:,.0f} req/s, {len(result.latencies_ms):,} answered; latency from the "
        f"scheduled instant p50 {result.pct(50):.2f} / p90 {result.pct(90):.2f} / p99 "
        f"{result.pct(99):.2f} / p99.9 {result.pct(99.9):.2f} / max {result.pct(100):.2f} ms; "
        f"{over:,} over {AIM_FIXED_P99_MS:.0f} ms ({over / max(1, len(result.latencies_ms)):.2%})."
        f" The client's own send lag (send minus scheduled instant, part of those latencies) p50 "
        f"{percentile(lags, 50):.2f} / p99 {percentile(lags, 99):.2f} ms; the client used "
        f"{result.client_cpu:.2f} cores."
    )


def render(report: Report) -> str:
    args = report.args
    bares = [m.result for m in (report.bare, report.bare_after) if m is not None]
    bare_req_s = statistics.fmean(b.req_s for b in bares) if bares else math.nan
    lines = [
        *report.run.head(
            section(report.args.movies)[0],
            "Recommendation serving (`bench/recommend.py`)"
            + ("" if report.args.movies == 10_000 else f", {report.args.movies:,} movies"),
        ),
        f"- Load: wrk {ingest.wrk_version()} `-t1 -c{args.connections} -d{int(args.duration)}s "
        f"--latency` with `bench/wrk_recommend.lua` (users in order from a file), after a "
        f"{int(args.warmup)} s warm-up run of the same kind; `context=home&k={K}`. Server: one "
        "uvicorn process, uvloop + httptools (the bare endpoint without an access log, the "
        "service with its own), on the same 2 cores as the load generator.",
        "- Service: `recommender serve` with its defaults: Postgres (a fresh schema, dropped "
        "afterwards), Redis, the broker (Tansu, ENABLE_KAFKA=true), the consumers inside `serve` "
        "(ENABLE_CONSUMERS=true), ACCESS_LOG=true, IMPRESSION_LOGGING=true, the near cache "
        f"(NEAR_CACHE_TTL_S=2); {args.event_rate:g} watch events/s streamed on the benchmark "
        "users during the headline runs (they change features, so lists and near caches are "
        "invalidated as in production); a row that says otherwise is a labelled extra"
        + (
            f"; also set for the `recommender` commands: `{' '.join(args.service_env)}`."
            if args.service_env
            else "."
        ),
        *(f"- {line}" for line in report.setup),
        f"- Sample check: {report.sample}",
        "- Cache tiers: the service's own counter (`recommend_cache_total{result=near|hit|miss}` "
        "on /metrics) over each measured run: the share answered by the near cache, by Redis, "
        "by the engine. Cache miss: the cached lists deleted first, every user asked at most "
        f"once per run. Hit workload: {args.hit_draws:,} requests drawn Zipf({args.zipf}) over "
        f"all {args.users:,} users (rank r with weight r^-{args.zipf}), wrk cycling over them "
        "from a cold cache (a warm-up run, then the measured run).",
        "- Fixed rate: half the cache-miss rate of this run (misses/s of the cache-miss run: "
        "answers that went through the engine, fallbacks left out), open loop — wrk cannot hold "
        "a rate and Debian has no wrk2, so a Python asyncio (uvloop) client in the benchmark "
        "process sends each request at its scheduled instant over "
        f"{args.connections} keep-alive connections (queued when all are busy) and measures "
        "latency from the scheduled instant (no coordinated omission); fresh users, after a "
        f"{int(args.warmup)} s warm-up at the same rate.",
        "- vs bare: req/s over the mean of the bare runs of this run"
        + (" (before and after the service)." if len(bares) > 1 else "."),
        "- Cores busy: CPU-seconds per second of the measured run: the server process (+ time "
        "its threads waited for a CPU) / all Postgres processes / the whole machine (out of "
        f"{os.cpu_count()}).",
        "",
        "| Run | req/s | p50 | p99 | vs bare | Aim | Verdict | Cache hits (measured) | Cores "
        "busy: server / Postgres / machine | Errors |",
        "|---|---:|---:|---:|---:|---|---|---|---|---|",
    ]

    def wrk_row(measured: Measured | None, aim: float | None, aim_text: str) -> None:
        if measured is None:
            return
        r = measured.result
        ratio = r.req_s / bare_req_s
        lines.append(
            f"| {measured.label} | {r.req_s:,.0f} | {r.p50_ms:.2f} ms | {r.p99_ms:.2f} ms "
            f"| {ratio:.2f} | {aim_text} | {verdict(ratio >= aim) if aim else '—'} "
            f"| {measured.counts.text() if measured.counts else '—'} | {ingest.cpu_text(r.cpu)} "
            f"| {ingest.wrk_errors(r)} |"
        )

    wrk_row(report.bare, None, "—")
    miss_aim = AIM_MISS_RATIO if report.args.movies <= 10_000 else AIM_MISS_RATIO_LARGE
    wrk_row(report.miss, miss_aim, f"≥ {miss_aim:.2f} of bare")
    wrk_row(report.hit, AIM_HIT_RATIO, f"≥ {AIM_HIT_RATIO:.2f} of bare")

    def open_row(result: OpenLoop | None, label: str, aim: bool) -> None:
        if result is None:
            return
        p99 = result.pct(99)
        lines.append(
            f"| {label} | {result.achieved:,.0f} | {result.pct(50):.2f} ms | **{p99:.2f} ms** "
            f"| — | p99 ≤ {AIM_FIXED_P99_MS:.0f} ms{'' if aim else ' (labelled extra row)'} "
            f"| {verdict(p99 <= AIM_FIXED_P99_MS)} "
            f"| {result.counts.text() if result.counts else '—'} | {ingest.cpu_text(result.cpu)} "
            f"| {result.non_2xx:,} non-2xx, {result.errors:,} client errors |"
        )

    fixed = report.fixed
    if fixed is not None:
        open_row(fixed, f"Cache miss at a fixed {fixed.rate:,.0f} req/s, open loop", True)
        open_row(
            report.fixed_touched,
            f"Cache miss at a fixed {fixed.rate:,.0f} req/s, one movie touched first (the "
            "catalog poll re-reads 1 movie, not all)",
            False,
        )
    wrk_row(report.miss_off, None, "— (labelled extra row)")
    wrk_row(report.bare_after, None, "—")

    lines.append("")
    if report.fixed_touched is not None:
        lines.append(
            "- One movie touched: the catalog poll (every 2 s) re-reads each movie whose "
            "updated_at lies within 10 s of the newest one. After the bulk load (all movies "
            "with about the same updated_at) that is the whole catalog at every poll, on the "
            "event loop; with one movie set to now() in Postgres, the next polls re-read that "
            "movie only. Same service process, same rate, fresh users."
        )
    for result, which in ((fixed, "fixed-rate run"), (report.fixed_touched, "touched run")):
        if result is not None:
            lines.append(f"- {open_loop_detail(result, which)}")
    on, off = report.miss, report.miss_off
    if on is not None and off is not None:
        ratio = on.result.req_s / off.result.req_s
        cost_us = (1 / on.result.req_s - 1 / off.result.req_s) * 1e6  # > 0: logging costs
        written = [m.counts.impressions if m.counts else None for m in (on, off)]
        fallbacks = [m.counts.fallbacks if m.counts else 0 for m in (on, off)]
        if written[0] is None:
            state = (
                "this build exports no impressions_written_total: IMPRESSION_LOGGING may not "
                "exist yet (then both rows ran the same code)"
            )
        else:
            state = (
                f"impressions written during the measured runs: {written[0]:,} with logging on, "
                f"{written[1]:,} with it off"
            )
            dropped = on.counts.dropped if on.counts else None
            if dropped:
                state += f" ({dropped:,} dropped: the buffer was full)"
        lines.append(
            f"- Impression logging: cache-miss req/s with IMPRESSION_LOGGING=true over =false = "
            f"**{ratio:.2f}** (logging on takes {cost_us:+,.0f} µs more per request at full load, "
            f"from 1/req/s of one event loop; fallbacks {fallbacks[0]:,} on, {fallbacks[1]:,} "
            f"off); {state}."
        )
    if report.hotspots:
        lines += [
            "",
            "Where the CPU goes (--profile: py-spy over extra cache-miss and hit-workload runs "
            "of the same service, not in the table above):",
            "",
            report.hotspots,
        ]
    return close_section(lines, report.notes, section(report.args.movies)[1])


# --------------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------------
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ingest.add_load_args(parser)
    parser.add_argument("--movies", type=int, default=10_000, help="Catalog size.")
    parser.add_argument("--users", type=int, default=100_000, help="Users with features.")
    parser.add_argument(
        "--zipf", type=float, default=1.1, help="Exponent of the hit workload's user popularity."
    )
    parser.add_argument(
        "--hit-draws", type=int, default=500_000, help="Requests drawn for the hit workload."
    )
    parser.add_argument(
        "--event-rate", type=float, default=100.0, help="Background watch events per second."
    )
    parser.add_argument("--train-users", type=int, default=5000, help="Users of the world.")
    parser.add_argument("--train-days", type=int, default=90, help="Days of the world.")
    parser.add_argument("--train-threads", type=int, default=2, help="TRAIN_THREADS.")
    parser.add_argument("--feature-workers", type=int, default=2, help="Processes (set-up).")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--fixed-rate", type=float, help="req/s of the fixed-rate run (default: half the max)."
    )
    parser.add_argument(
        "--logging-off-run",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="Also measure cache misses with IMPRESSION_LOGGING=false (a labelled extra row).",
    )
    parser.add_argument(
        "--catalog-touch-run",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="Repeat the fixed-rate run once one movie is the catalog's latest change (a "
        "labelled extra row: the catalog poll then re-reads 1 movie, not all of them).",
    )
    parser.add_argument(
        "--service-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="An extra environment variable for the `recommender` commands of the run (serve, "
        "train, demo load; repeatable), e.g. OPENBLAS_NUM_THREADS=1.",
    )
    args = ingest.check_load_args(parser, parser.parse_args(argv))
    if any("=" not in item for item in args.service_env):
        parser.error("--service-env takes NAME=VALUE")
    return args


def prepare(
    args: argparse.Namespace, report: Report, env: dict[str, str], work: Path, logs: Path
) -> tuple[list[str], list[str]]:
    """The world, the model, the catalog in Postgres, the users' features in Redis; returns the
    user ids and the movie ids."""
    from interaction_recommender.demo.events import world_catalog
    from interaction_recommender.demo.world import World, generate_world, write_world

    recommender = str(VENV_BIN / "recommender")
    started = time.perf_counter()
    world = generate_world(
        args.seed, movies=args.movies, users=args.train_users, days=args.train_days
    )
    movie_ids = [str(movie["movieId"]) for movie in world.movies]
    world_file, movies_file = work / "world.jsonl", work / "movies.jsonl"
    write_world(world, world_file)
    write_world(World(movies=world.movies, events=[], users=[]), movies_file)
    generated = time.perf_counter() - started
    print(f"[bench] world: {len(world.events):,} events in {generated:.1f} s", file=sys.stderr)

    # Training runs in its own process while the catalog and the features are loaded.
    train_log = logs / "train.log"
    trained = time.perf_counter()
    with train_log.open("ab") as err:
        trainer = subprocess.Popen(
            [recommender, "train", "--events-file", str(world_file)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=err,
            cwd=ROOT,
            text=True,
        )
    try:
        loaded = time.perf_counter()
        stored = last_json(
            run_cli([recommender, "demo", "load", str(movies_file)], env, logs / "load.log", 600)
        )
        load_s = time.perf_counter() - loaded

        rng = Random(f"{args.seed}/users")
        users = [str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(args.users)]
        popularity = Counter(str(e["movieId"]) for e in world.events if e.get("movieId"))
        histories = Histories(world_catalog(world), popularity, datetime.now(UTC))
        del world
        gc.collect()
        written = time.perf_counter()
        stats = write_features(args, env["REDIS_KEY_PREFIX"], users, histories)
        features_s = time.perf_counter() - written

        out, _ = trainer.communicate(timeout=3600)
    finally:
        if trainer.poll() is None:
            ingest.stop_process(trainer, "recommender train")  # type: ignore[arg-type]
    if trainer.returncode != 0:
        tail = train_log.read_text(errors="replace")[-3000:]
        raise RuntimeError(f"recommender train exited with {trainer.returncode}:\n{tail}")
    train_s = time.perf_counter() - trained
    model = last_json(out)
    counts = model.get("counts") or {}
    metrics = model.get("offlineMetrics") or {}
    watched = stats["watched"]
    report.setup += [
        f"World: `generate_world({args.seed}, movies={args.movies:,}, users="
        f"{args.train_users:,}, days={args.train_days})`, {popularity.total():,} events with a "
        f"movie ({generated:.1f} s with writing it).",
        f"Model: `recommender train --events-file` on that world (TRAIN_THREADS="
        f"{args.train_threads}; trained on its {args.train_users:,} users, not on the "
        f"{args.users:,} served ones, to keep the set-up short), version `{model.get('version')}`"
        f", counts {json.dumps(counts, separators=(', ', ': '))}, holdout nDCG@10 "
        f"{metrics.get('ndcg')}; {train_s:.0f} s wall (overlapping the next two steps).",
        f"Catalog: {stored.get('movies', 0):,} movies loaded by `recommender demo load` (no "
        f"events) in {load_s:.1f} s.",
        f"Users: {len(users):,} with features in Redis (`RedisFeatureStore.put_many`, "
        f"REDIS_KEY_PREFIX of the run), written in {features_s:.0f} s by "
        f"{args.feature_workers} processes; {stats['events'] / len(users):.1f} synthetic events "
        f"per user through `build_features`; distinct movies watched p10/p50/p90/max "
        f"{percentile(watched, 10)}/{percentile(watched, 50)}/{percentile(watched, 90)}/"
        f"{watched[-1]}; encoded features {stats['bytes'] / len(users):,.0f} bytes on average.",
    ]
    for line in report.setup:
        print(f"[bench] {line}", file=sys.stderr)
    return users, movie_ids


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    report = Report(args, Run.of("bench/recommend.py", argv))

    run = ingest.workspace(report.run, "recommend", args.database_url, args.redis_url)
    with run as (stack, space):
        work, logs, schema, prefix = space.work, space.logs, space.schema, space.redis_prefix
        kafka = ingest.start_kafka(stack, logs)
        env = base_env(args, schema, prefix, work, kafka)
        ids, movies = prepare(args, report, env, work, logs)
        miss_users = Users(work / "users.txt", ids)
        hit_users = Users(
            work / "hit-users.txt", zipf_users(ids, args.hit_draws, args.zipf, args.seed)
        )
        gc.collect()
        gc.freeze()  # the open-loop client's collections scan only new objects

        def clear_lists() -> None:
            deleted = ingest.delete_redis_keys(args.redis_url, f"{prefix}reclists:")
            print(f"[bench] deleted {deleted:,} cached lists", file=sys.stderr)
            miss_users.cursor = 0

        # 1. The bare baseline (idle while the service runs; measured again at the end).
        bare, port = stack.enter_context(ingest.bare_app(logs))
        bare_base = f"http://127.0.0.1:{port}"
        bare_label = "Bare FastAPI GET, 20 fixed items (`bench/bare_app.py`)"
        report.bare = closed_loop(
            args, bare_base, f"{bare_label}, first", miss_users, bare.pid, BARE_PATH, False
        )

        # 2. The service as configured by default, events streaming in meanwhile.
        with service(env, True, logs) as (process, base, port):
            report.sample = sample_check(base, ids[-1])
            print(f"[bench] sample: {report.sample}", file=sys.stderr)
            stream = EventStream(base, ids, movies, args.event_rate, args.seed)
            with stream:
                clear_lists()
                report.miss = closed_loop(args, base, "Cache miss", miss_users, process.pid)
                report.hit = closed_loop(
                    args,
                    base,
                    f"Hit workload: Zipf({args.zipf}) over {len(ids):,} users",
                    hit_users,
                    process.pid,
                )
                rate = args.fixed_rate or max_miss_rate(report.miss) / 2

                def fixed_rate(label: str) -> OpenLoop:
                    clear_lists()
                    open_loop(args, port, miss_users, rate, args.warmup, f"{label} (warm-up)")
                    before = scrape(base)
                    meter = CpuMeter(process.pid)
                    result = open_loop(args, port, miss_users, rate, args.duration, label)
                    result.cpu = meter.stop()
                    result.counts = counts_between(before, scrape(base))
                    return result

                report.fixed = fixed_rate("fixed rate")
                if args.catalog_touch_run:
                    touch_one_movie(args.database_url, schema)
                    time.sleep(3 * CATALOG_POLL_S)  # the poll moves on; the view is rebuilt once
                    report.fixed_touched = fixed_rate("fixed rate, one movie touched")
                if args.profile is not None:
                    report.hotspots = profile(args, base, process.pid, miss_users, hit_users)
                    clear_lists()
            report.notes.append(
                f"Background events during the service's runs: {stream.sent:,} watch events "
                f"sent ({stream.failed:,} failed) at {args.event_rate:g}/s on the benchmark users."
            )

        # 3. Impression logging off (a labelled extra row; no events streaming).
        if args.logging_off_run:
            with service(env, False, logs) as (process, base, _):
                clear_lists()
                report.miss_off = closed_loop(
                    args, base, "Cache miss, IMPRESSION_LOGGING=false", miss_users, process.pid
                )
        if report.miss is not None:
            report.miss.label = "Cache miss (defaults, events streaming)"
        if args.bare_after:
            report.bare_after = closed_loop(
                args,
                bare_base,
                f"{bare_label}, again at the end",
                miss_users,
                bare.pid,
                BARE_PATH,
                False,
            )
        report.run.done()

    publish(render(report), args.write, *section(args.movies))
    if args.profile is not None:
        publish_hotspots(report.hotspots, args.profile)
    return 0


def profile(
    args: argparse.Namespace, base: str, pid: int, miss_users: Users, hit_users: Users
) -> str:
    """py-spy over an extra cache-miss and an extra cache-hit run (not in the table)."""
    parts = []
    for name, users in (("miss", miss_users), ("hit", hit_users)):

        def load(seconds: float, users: Users = users, name: str = name) -> object:
            result = ingest.run_wrk(
                args,
                base,
                seconds,
                f"cache {name}, py-spy",
                WRK_SCRIPT,
                users.script_args(SERVICE_PATH),
            )
            users.advance(result, args.connections)
            return result

        summary = ingest.profile_service(args, pid, name, load, args.profile, _GROUPS)
        parts += [f"### Cache {name} under py-spy", "", summary, ""]
    return "\n".join(parts).strip()


if __name__ == "__main__":
    raise SystemExit(main())
