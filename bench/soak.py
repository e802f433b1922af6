"""Soak benchmark: a paced mix of ingest, recommendations and feedback for a long while (issue 17),
then everything the service queued must drain.

    .venv/bin/python bench/soak.py [--duration 1800] [--rate 200] [--write docs/benchmarks.md]

Set-up (not timed):

1. Tansu (a Kafka-protocol broker), a fresh Postgres schema (dropped at the end) and a unique
   REDIS_KEY_PREFIX (its keys deleted at the end), as bench/ingest.py and bench/recommend.py do.
2. A synthetic world, `demo.world.generate_world(--seed, movies=--movies, users=--users,
   days=--days, end=now)`, loaded by `recommender demo load` (the catalog upsert and the batch
   ingest path: raw events + outbox), then `recommender train` on the stored events: the champion
   every serving process loads from the model store.
3. `recommender serve` as the platform deploys it (docker-compose.yml): Postgres, Redis, Kafka
   (ENABLE_KAFKA=true), the consumers and the outbox relay inside `serve`
   (ENABLE_CONSUMERS=true), the access log, the impression log and the near cache on. The world's
   events go through the relay and the consumers (features in Redis) before the load starts: the
   set-up waits until the outbox backlog and the consumer lag are 0 and the trained model is
   loaded, then checks one world user's answer (bench/recommend.py's sample check).

The load: an open-loop asyncio (uvloop) httpx client in this process schedules --rate requests
per second in total (--mix: the share of each kind) over --connections keep-alive connections;
latency is measured from each request's scheduled instant (a slow answer cannot hide the requests
queued behind it). A request still queued in the client after 5 s worth of the rate is dropped
and counted (the rate was not held: the run fails). Kinds:

- `event`: one event, `POST /api/v1/events/{watch,search,rating,favorite}` (60/15/15/10%), of a
  user drawn by the world's activity (plus --new-users users with no history); the movie is one
  the user was just recommended (40%), from the user's favourite genres, or any, by popularity.
  --retry-share of them resend an answered body with its requestId (a Feign retry): the answer
  must say `duplicate`.
- `batch`: `POST /api/v1/events/batch` of --batch-min..--batch-max such events (mixed users).
- `recommend`: `GET /api/v1/recommend/{userId}?k=--k&context=` home (60%), detail:<movie> (15%),
  similar:<movie> (15%), search (10%); the answer must hold 1..k distinct movies.
- `feedback`: `POST /api/v1/feedback` on one of the recent answers (its recommendationId, items,
  modelVersion, context): click/watch/dismiss/like (50/25/15/10%); retries as for events.

Any 5xx, timeout (10 s, Feign's read timeout) or connection error is an error; a 4xx or an
answer that breaks its expectation (above) is counted too; every one fails the run.

Every --sample-interval seconds: the server's RSS (psutil when installed, else /proc/PID/status
VmRSS), threads, open files, CPU; from GET /metrics `outbox_backlog`, the sum of `consumer_lag`
(every group and partition) and `impressions_pending`; per kind the requests, errors and
latency p50/p99 of the interval. Samples go to bench/results/soak-<time>/samples.jsonl as they
are taken. The RSS baseline is the first sample after --warmup seconds.

At the end the load stops (in-flight requests finish), then the script waits up to
--drain-timeout seconds until outbox backlog, consumer lag and pending impressions read 0 three
times in a row (1 s apart), and reports how long that took; then it cross-checks in Postgres
(unsent outbox rows; new raw_events >= accepted events; impressions >= answers; explicit
feedback rows = recorded) and on the broker (each group's committed offsets against the end
offsets). Prints the markdown section (--write: into the given file between the bench:soak
markers) and a JSON summary (also kept as summary.json). Exit code 1 when anything above failed.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import contextlib
import json
import math
import os
import subprocess
import sys
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from random import Random
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/ingest.py, recommend.py, report.py

import ingest
import recommend
from ingest import VENV_BIN, pg
from report import Run, add_store_args, close_section, git_commit, markers, percentile, publish
from tests.fixtures.services import free_port  # ingest put the root on sys.path

START_MARKER, END_MARKER = markers("soak")
KINDS = ("event", "batch", "recommend", "feedback")
EVENT_TYPES = ("watch", "search", "rating", "favorite")
EVENT_WEIGHTS = (60, 15, 15, 10)
CONTEXTS = ("home", "detail", "similar", "search")
CONTEXT_WEIGHTS = (60, 15, 15, 10)
ACTIONS = ("click", "watch", "dismiss", "like")
ACTION_WEIGHTS = (50, 25, 15, 10)
CONSUMERS = ("features", "catalog-placeholders", "feedback-attribution")  # ConsumerLoop names
CONSUMER_GROUPS = (  # Settings' defaults: the groups of those consumers
    "interaction-recommender-features",
    "interaction-recommender-catalog",
    "interaction-recommender-attribution",
)
TIMEOUT_S = 10.0  # Feign's read timeout (docs/contract.md)
QUEUE_LIMIT_S = 5.0  # a request queued in the client longer than this much of the rate: dropped
JSON_HEADERS = {"content-type": "application/json"}


# --------------------------------------------------------------------------------------------
# The traffic: who does what
# --------------------------------------------------------------------------------------------
@dataclass(slots=True)
class Request:
    kind: str
    method: str
    path: str
    body: bytes | None = None
    expect: str | None = None  # "accepted" | "duplicate" | "recorded" (single event, feedback)
    size: int = 0  # events in a batch
    user: str = ""


@dataclass(slots=True)
class Shown:
    """A recommendation answer, for feedback and for events that follow it."""

    user: str
    recommendation_id: str
    items: list[str]
    model_version: str
    context: str


def _cumulative(weights: list[float]) -> list[float]:
    total, out = 0.0, []
    for weight in weights:
        total += weight
        out.append(total)
    return out


def pick(cumulative: list[float], rng: Random) -> int:
    """An index drawn by the weights whose running sums are ``cumulative``."""
    return min(bisect.bisect(cumulative, rng.random() * cumulative[-1]), len(cumulative) - 1)


def _now() -> str:
    return datetime.now(UTC).isoformat()


class Traffic:
    """Builds requests from the world's users and movies, and remembers what the service
    answered (the lists shown, the bodies accepted) for the feedback, events and retries that
    follow."""

    def __init__(self, world: Any, new_users: int, args: argparse.Namespace) -> None:
        import orjson

        self._dumps = orjson.dumps
        self.args = args
        self.rng = Random(f"{args.seed}/soak")
        users: list[str] = [str(u.user_id) for u in world.users]
        weights = [max(float(u.activity), 0.05) for u in world.users]
        self.tastes: dict[str, tuple[list[str], list[float]]] = {
            u.user_id: (list(u.favourite_genres), _cumulative(list(u.favourite_genres.values())))
            for u in world.users
            if u.favourite_genres
        }
        quiet = sorted(weights)[len(weights) // 2] / 2 if weights else 1.0  # half the median
        fresh = [str(uuid.UUID(int=self.rng.getrandbits(128), version=4)) for _ in range(new_users)]
        self.users: list[str] = users + fresh
        self.world_users = users
        self.user_cum = _cumulative(weights + [quiet] * len(fresh))
        popularity = Counter(str(e["movieId"]) for e in world.events if e.get("movieId"))
        self.movies = [str(m["movieId"]) for m in world.movies]
        self.length_s = {
            str(m["movieId"]): int(m.get("durationMinutes") or 100) * 60 for m in world.movies
        }
        movie_weights = [popularity.get(m, 0) + 1.0 for m in self.movies]
        self.all_movies = (self.movies, _cumulative(movie_weights))
        members: dict[str, list[int]] = {}
        for index, movie in enumerate(world.movies):
            for genre in movie.get("genres") or ():
                members.setdefault(genre, []).append(index)
        self.by_genre = {
            genre: ([self.movies[i] for i in idx], _cumulative([movie_weights[i] for i in idx]))
            for genre, idx in members.items()
        }
        words = {w.lower() for m in world.movies for w in str(m.get("title", "")).split()}
        self.queries = sorted(w for w in words if len(w) > 3) + [g.lower() for g in members]
        self.last_list: dict[str, list[str]] = {}
        self.shown: deque[Shown] = deque(maxlen=5000)
        self.sent_events: deque[tuple[str, bytes]] = deque(maxlen=1000)
        self.sent_feedback: deque[bytes] = deque(maxlen=1000)

    # -- draws ---------------------------------------------------------------------------------
    def _draw(self, pool: tuple[list[str], list[float]]) -> str:
        items, cumulative = pool
        return items[pick(cumulative, self.rng)]

    def user(self) -> str:
        return self.users[pick(self.user_cum, self.rng)]

    def movie_for(self, user: str) -> str:
        r = self.rng.random()
        recent = self.last_list.get(user)
        if recent and r < 0.4:  # what they were just shown, the top more likely
            return recent[min(int(self.rng.expovariate(0.4)), len(recent) - 1)]
        taste = self.tastes.get(user)
        if taste is not None and r < 0.8:
            genres, cumulative = taste
            genre = genres[pick(cumulative, self.rng)]
            if genre in self.by_genre:
                return self._draw(self.by_genre[genre])
        return self._draw(self.all_movies)

    # -- bodies --------------------------------------------------------------------------------
    def event_item(self, event_type: str, user: str) -> dict[str, Any]:
        rng = self.rng
        item: dict[str, Any] = {
            "requestId": str(uuid.uuid4()),
            "userId": user,
            "clientTimestamp": _now(),
        }
        if event_type == "search":
            if rng.random() < 0.2:
                item["movieId"] = self.movie_for(user)
            item["metadata"] = {
                "query": rng.choice(self.queries),
                "resultsCount": rng.randint(0, 60),
                "sessionId": f"s-{rng.getrandbits(40):x}",
            }
            return item
        movie = self.movie_for(user)
        item["movieId"] = movie
        if event_type == "watch":
            progress = rng.choice((5.0, 12.5, 25.0, 40.0, 60.0, 80.0, 95.0, 100.0))
            item["metadata"] = {
                "watchDuration": int(self.length_s.get(movie, 6000) * progress / 100),
                "progressPercent": progress,
                "device": rng.choice(("web", "tv", "android", "ios")),
                "quality": rng.choice(("720p", "1080p", "4k")),
                "sessionId": f"s-{rng.getrandbits(40):x}",
            }
        elif event_type == "rating":
            item["metadata"] = {"rating": rng.choice((1.0, 2.0, 3.0, 3.5, 4.0, 4.5, 5.0))}
        else:
            item["metadata"] = {"action": "add" if rng.random() < 0.85 else "remove"}
        return item

    def event(self) -> Request:
        rng = self.rng
        if self.sent_events and rng.random() < self.args.retry_share:
            path, body = rng.choice(self.sent_events)
            return Request("event", "POST", path, body, expect="duplicate")
        event_type = rng.choices(EVENT_TYPES, EVENT_WEIGHTS)[0]
        user = self.user()
        body = self._dumps(self.event_item(event_type, user))
        return Request("event", "POST", f"/api/v1/events/{event_type}", body, "accepted", user=user)

    def batch(self) -> Request:
        size = self.rng.randint(self.args.batch_min, self.args.batch_max)
        items = []
        for _ in range(size):
            event_type = self.rng.choices(EVENT_TYPES, EVENT_WEIGHTS)[0]
            items.append({"type": event_type, **self.event_item(event_type, self.user())})
        body = self._dumps({"events": items})
        return Request("batch", "POST", "/api/v1/events/batch", body, size=size)

    def recommend(self) -> Request:
        user = self.user()
        context = self.rng.choices(CONTEXTS, CONTEXT_WEIGHTS)[0]
        if context in ("detail", "similar"):
            context = f"{context}:{self.movie_for(user)}"
        path = f"/api/v1/recommend/{user}?k={self.args.k}&context={context}"
        return Request("recommend", "GET", path, user=user)

    def feedback(self) -> Request | None:
        rng = self.rng
        if self.sent_feedback and rng.random() < self.args.retry_share:
            return Request(
                "feedback",
                "POST",
                "/api/v1/feedback",
                rng.choice(self.sent_feedback),
                expect="duplicate",
            )
        if not self.shown:
            return None
        # Mostly about a recent answer, sometimes an older one.
        shown = self.shown[-1 - min(int(rng.expovariate(1 / 200)), len(self.shown) - 1)]
        action = rng.choices(ACTIONS, ACTION_WEIGHTS)[0]
        clicked = None
        if action != "dismiss" and shown.items:
            clicked = shown.items[min(int(rng.expovariate(0.4)), len(shown.items) - 1)]
        body = {
            "requestId": str(uuid.uuid4()),
            "userId": shown.user,
            "recommendationId": shown.recommendation_id,
            "modelVersion": shown.model_version,
            "impressionList": shown.items,
            "clickedItemId": clicked,
            "watchTimeSec": rng.randint(60, 7200) if action in ("watch", "like") else None,
            "action": action,
            "context": shown.context,
            "timestamp": _now(),
        }
        return Request(
            "feedback", "POST", "/api/v1/feedback", self._dumps(body), "recorded", user=shown.user
        )

    def next(self, kind: str) -> Request:
        if kind == "event":
            return self.event()
        if kind == "batch":
            return self.batch()
        if kind == "feedback":
            request = self.feedback()
            if request is not None:
                return request
        return self.recommend()  # also a feedback slot before anything was shown

    # -- answers -------------------------------------------------------------------------------
    def check(self, request: Request, data: Any) -> str | None:
        """A 200 answer's body against what the request expects; remembers what follows from
        it. Returns a problem, or None."""
        if not isinstance(data, dict):
            return "not a JSON object"
        if request.kind == "recommend":
            items = [str(i.get("movieId")) for i in data.get("recommendations") or []]
            if not 1 <= len(items) <= self.args.k or len(set(items)) != len(items):
                return f"{len(items)} items ({len(set(items))} distinct) for k={self.args.k}"
            rec_id = data.get("recommendationId")
            if not rec_id:
                return "no recommendationId"
            self.last_list[request.user] = items
            self.shown.append(
                Shown(
                    request.user,
                    str(rec_id),
                    items,
                    str(data.get("modelVersion")),
                    str(data.get("context")),
                )
            )
            return None
        if request.kind == "batch":
            accepted, rejected = data.get("accepted"), data.get("rejected")
            if rejected or accepted != request.size:
                return f"batch of {request.size}: accepted {accepted}, rejected {rejected}"
            return None
        status = data.get("status")
        if status != request.expect:
            return f"status {status!r}, expected {request.expect!r}"
        if request.expect != "duplicate" and request.body is not None:
            if request.kind == "event":
                self.sent_events.append((request.path, request.body))
            else:
                self.sent_feedback.append(request.body)
        return None


# --------------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------------
@dataclass
class KindStats:
    statuses: Counter[str] = field(default_factory=Counter)  # "200", "503", "timeout", ...
    latencies_ms: list[float] = field(default_factory=list)  # after the warm-up
    window_ms: list[float] = field(default_factory=list)  # since the last sample
    window_errors: int = 0
    invalid: int = 0  # 2xx answers that broke their expectation
    duplicates_expected: int = 0
    events: int = 0  # events sent (single: 1, batch: its size), retries excluded
    accepted: int = 0  # events accepted, feedback recorded (new rows expected)
    policies: Counter[str] = field(default_factory=Counter)
    cached: int = 0
    joins: Counter[str] = field(default_factory=Counter)
    dropped: int = 0  # never sent: the client's queue was over QUEUE_LIMIT_S
    examples: list[str] = field(default_factory=list)

    @property
    def requests(self) -> int:
        return sum(self.statuses.values())

    @property
    def errors(self) -> int:
        """5xx, timeouts and connection errors."""
        return sum(n for s, n in self.statuses.items() if not s.isdigit() or s.startswith("5"))

    @property
    def client_errors(self) -> int:
        return sum(n for s, n in self.statuses.items() if s.startswith("4"))

    def example(self, text: str) -> None:
        if len(self.examples) < 5:
            self.examples.append(text[:300])


@dataclass
class Gauges:
    backlog: float | None
    oldest_age_s: float | None
    lag: float
    lag_groups: dict[str, float]
    impressions_pending: float | None

    @property
    def drained(self) -> bool:
        return (
            self.backlog == 0
            and self.lag == 0
            and set(CONSUMERS) <= set(self.lag_groups)
            and not self.impressions_pending
        )


@dataclass
class Outcome:
    """What the load and the drain found."""

    stats: dict[str, KindStats]
    samples: list[dict[str, Any]]
    load_s: float = 0.0
    measured_s: float = 0.0
    warmup_s: float = 0.0
    client_cpu: float = math.nan
    send_lag_ms: list[float] = field(default_factory=list)
    drain_s: float | None = None  # None: did not drain within the timeout
    drain_last: Gauges | None = None
    rss_after_drain_mb: float = math.nan
    metrics_before: dict[str, float] = field(default_factory=dict)
    metrics_after: dict[str, float] = field(default_factory=dict)


@dataclass
class Report:
    args: argparse.Namespace
    run: Run
    setup: list[str] = field(default_factory=list)
    sample: str = ""
    outcome: Outcome | None = None
    checks: dict[str, Any] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    logs: Path | None = None


# --------------------------------------------------------------------------------------------
# The server process and its metrics
# --------------------------------------------------------------------------------------------
def rss_mb(pid: int) -> float:
    """Resident set size in MB (psutil if installed, else VmRSS of /proc/PID/status)."""
    try:
        import psutil  # type: ignore[import-untyped, unused-ignore]
    except ImportError:
        pass
    else:
        with contextlib.suppress(Exception):
            return float(psutil.Process(pid).memory_info().rss) / 2**20
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return math.nan


def proc_facts(pid: int) -> dict[str, float]:
    """Threads, open files and CPU seconds of a process (NaN when gone)."""
    facts = {"threads": math.nan, "fds": math.nan, "cpu_s": math.nan}
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("Threads:"):
                facts["threads"] = float(line.split()[1])
        facts["fds"] = float(len(os.listdir(f"/proc/{pid}/fd")))
        facts["cpu_s"] = ingest._proc_cpu(Path(f"/proc/{pid}/stat").read_text())[1]
    return facts


def parse_metrics(text: str) -> dict[str, float]:
    values: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            with contextlib.suppress(ValueError):
                values[name] = float(value)
    return values


def gauges(values: dict[str, float]) -> Gauges:
    groups: dict[str, float] = {}
    for name, value in values.items():
        if name.startswith("consumer_lag{"):
            labels = dict(
                part.split("=", 1) for part in name[len("consumer_lag{") : -1].split(",") if part
            )
            group = labels.get("group", "?").strip('"')
            groups[group] = groups.get(group, 0.0) + value
    return Gauges(
        backlog=values.get("outbox_backlog"),
        oldest_age_s=values.get("outbox_oldest_age_seconds"),
        lag=sum(groups.values()),
        lag_groups=groups,
        impressions_pending=values.get("impressions_pending"),
    )


def metric_sum(values: dict[str, float], prefix: str) -> float:
    return sum(v for k, v in values.items() if k == prefix or k.startswith(prefix + "{"))


def http_5xx(values: dict[str, float]) -> float:
    return sum(
        v for k, v in values.items() if k.startswith("http_requests_total{") and 'status="5' in k
    )


# --------------------------------------------------------------------------------------------
# Set-up
# --------------------------------------------------------------------------------------------
def wait_until_drained(base: str, timeout: float, what: str) -> float:
    """Poll /metrics until the backlog gauges read 0 three times in a row; seconds it took."""
    import httpx

    started = time.monotonic()
    streak, last = 0, None
    while time.monotonic() - started < timeout:
        with contextlib.suppress(httpx.HTTPError):
            last = gauges(parse_metrics(httpx.get(f"{base}/metrics", timeout=10).text))
            streak = streak + 1 if last.drained else 0
            if streak >= 3:
                return time.monotonic() - started
        time.sleep(1.0)
    raise RuntimeError(f"{what}: not drained within {timeout:.0f} s (last gauges: {last})")


def wait_for_model(base: str, version: str, timeout: float) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    info: dict[str, Any] = {}
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError, ValueError):
            info = httpx.get(f"{base}/api/v1/model/info", timeout=10).json()
            if info.get("status") == "loaded" and info.get("version") == version:
                return
        time.sleep(1.0)
    raise RuntimeError(f"model {version} not loaded within {timeout:.0f} s: {info}")


def prepare(
    args: argparse.Namespace, report: Report, env: dict[str, str], work: Path, logs: Path
) -> tuple[Any, str]:
    """The world (in Postgres through the ingest path) and the trained champion; returns the
    world and the model's version."""
    from interaction_recommender.demo.world import generate_world, write_world

    recommender = str(VENV_BIN / "recommender")
    started = time.perf_counter()
    end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    world = generate_world(args.seed, movies=args.movies, users=args.users, days=args.days, end=end)
    world_file = work / "world.jsonl"
    write_world(world, world_file)
    generated = time.perf_counter() - started
    loaded = time.perf_counter()
    stored = recommend.last_json(
        recommend.run_cli(
            [recommender, "demo", "load", str(world_file)], env, logs / "load.log", 1800
        )
    )
    load_s = time.perf_counter() - loaded
    trained = time.perf_counter()
    model = recommend.last_json(
        recommend.run_cli([recommender, "train"], env, logs / "train.log", 3600)
    )
    train_s = time.perf_counter() - trained
    counts = model.get("counts") or {}
    metrics = model.get("offlineMetrics") or {}
    report.setup += [
        f"World: `generate_world({args.seed}, movies={args.movies:,}, users={args.users:,}, "
        f"days={args.days}, end=<the start hour>)`: {len(world.events):,} events "
        f"({generated:.1f} s); loaded by `recommender demo load` (catalog upsert, batch ingest: "
        f"raw events + outbox) in {load_s:.0f} s: {stored.get('movies', 0):,} movies, "
        f"{stored.get('events', 0):,} events.",
        f"Model: `recommender train` on the stored events (TRAIN_THREADS={args.train_threads}), "
        f"version `{model.get('version')}`, counts "
        f"{json.dumps(counts, separators=(', ', ': '))}, holdout nDCG@10 {metrics.get('ndcg')}; "
        f"{train_s:.0f} s.",
    ]
    for line in report.setup:
        print(f"[bench] {line}", file=sys.stderr)
    return world, str(model.get("version"))


# --------------------------------------------------------------------------------------------
# The load
# --------------------------------------------------------------------------------------------
def parse_mix(text: str) -> dict[str, float]:
    mix: dict[str, float] = {}
    for part in text.split(","):
        name, _, share = part.partition("=")
        if name.strip() not in KINDS:
            raise ValueError(f"--mix: unknown kind {name!r} (kinds: {', '.join(KINDS)})")
        mix[name.strip()] = float(share)
    if sum(mix.values()) <= 0 or any(v < 0 for v in mix.values()):
        raise ValueError("--mix: shares must be >= 0 and not all 0")
    return mix


class Soak:
    """The open-loop load, the sampler and the drain, in one event loop."""

    def __init__(
        self,
        args: argparse.Namespace,
        base: str,
        pid: int,
        traffic: Traffic,
        samples_file: Path,
        extra_pids: dict[str, int],
        alive: Callable[[], bool],
    ) -> None:
        self.args = args
        self.base = base
        self.pid = pid
        self.traffic = traffic
        self.samples_file = samples_file
        self.extra_pids = extra_pids
        self.alive = alive
        self.stopped_early: str | None = None
        mix = parse_mix(args.mix)
        self.kinds = [k for k in KINDS if mix.get(k, 0) > 0]
        self.kind_cum = _cumulative([mix[k] for k in self.kinds])
        self.stats = {k: KindStats() for k in KINDS}
        self.outcome = Outcome(self.stats, [])
        self.warmup = min(args.warmup, args.duration / 2)
        self.outcome.warmup_s = self.warmup
        self.started = 0.0
        self.measure_from = 0.0
        self.send_lags: list[float] = []
        self.window_send_lag_ms = 0.0  # the longest send lag since the last sample

    async def run(self) -> Outcome:
        import httpx

        limits = httpx.Limits(
            max_connections=self.args.connections, max_keepalive_connections=self.args.connections
        )
        timeout = httpx.Timeout(TIMEOUT_S)
        async with (
            httpx.AsyncClient(base_url=self.base, limits=limits, timeout=timeout) as client,
            httpx.AsyncClient(base_url=self.base, timeout=timeout) as probe,
        ):
            self.outcome.metrics_before = await self._metrics(probe)
            queue: asyncio.Queue[tuple[str, float] | None] = asyncio.Queue()
            cpu, wall = time.process_time(), time.perf_counter()
            self.started = time.monotonic()
            self.measure_from = self.started + self.warmup
            workers = [
                asyncio.create_task(self._worker(client, queue))
                for _ in range(self.args.connections)
            ]
            sampler = asyncio.create_task(self._sampler(probe))
            await self._schedule(queue)
            for _ in workers:
                queue.put_nowait(None)
            await asyncio.gather(*workers)
            load_end = time.monotonic()
            self.outcome.load_s = load_end - self.started
            self.outcome.measured_s = load_end - self.measure_from
            self.outcome.client_cpu = (time.process_time() - cpu) / (time.perf_counter() - wall)
            sampler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sampler
            await self._sample(probe, final=True)  # the end of the load
            print(
                f"[bench] load stopped after {self.outcome.load_s:.0f} s; waiting up to "
                f"{self.args.drain_timeout:.0f} s for the backlogs to drain",
                file=sys.stderr,
            )
            await self._drain(probe, load_end)
            self.outcome.metrics_after = await self._metrics(probe)
        self.outcome.rss_after_drain_mb = rss_mb(self.pid)
        self.outcome.send_lag_ms = sorted(self.send_lags)
        return self.outcome

    async def _metrics(self, probe: Any) -> dict[str, float]:
        import httpx

        try:
            return parse_metrics((await probe.get("/metrics")).text)
        except httpx.HTTPError as exc:
            print(f"[bench] GET /metrics failed: {exc!r}", file=sys.stderr)
            return {}

    async def _schedule(self, queue: asyncio.Queue[tuple[str, float] | None]) -> None:
        rate = self.args.rate
        limit = max(1, int(rate * QUEUE_LIMIT_S))
        end = self.started + self.args.duration
        rng = Random(f"{self.args.seed}/schedule")
        index = 0
        while True:
            scheduled = self.started + index / rate
            if scheduled >= end:
                return
            if index % 100 == 0 and not self.alive():
                self.stopped_early = f"the server exited after {scheduled - self.started:.0f} s"
                print(f"[bench] {self.stopped_early}: stopping the load", file=sys.stderr)
                return
            delay = scheduled - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            else:
                await asyncio.sleep(0)
            kind = self.kinds[pick(self.kind_cum, rng)]
            if queue.qsize() >= limit:
                self.stats[kind].dropped += 1
            else:
                queue.put_nowait((kind, scheduled))
            index += 1

    async def _worker(self, client: Any, queue: asyncio.Queue[tuple[str, float] | None]) -> None:
        import httpx
        import orjson

        while (item := await queue.get()) is not None:
            kind, scheduled = item
            request = self.traffic.next(kind)
            stats = self.stats[request.kind]
            sent = time.monotonic()
            lag_ms = (sent - scheduled) * 1000
            self.window_send_lag_ms = max(self.window_send_lag_ms, lag_ms)
            if sent >= self.measure_from:
                self.send_lags.append(lag_ms)
            try:
                if request.method == "GET":
                    response = await client.get(request.path)
                else:
                    response = await client.post(
                        request.path, content=request.body, headers=JSON_HEADERS
                    )
            except httpx.TimeoutException as exc:
                status, response = "timeout", None
                stats.example(f"{request.method} {request.path}: {type(exc).__name__}")
            except httpx.HTTPError as exc:
                status, response = "connection", None
                stats.example(f"{request.method} {request.path}: {type(exc).__name__}: {exc}")
            else:
                status = str(response.status_code)
            done = time.monotonic()
            elapsed_ms = (done - scheduled) * 1000
            stats.statuses[status] += 1
            stats.window_ms.append(elapsed_ms)
            if scheduled >= self.measure_from:
                stats.latencies_ms.append(elapsed_ms)
            if request.expect == "duplicate":
                stats.duplicates_expected += 1
            elif request.kind == "batch":
                stats.events += request.size
            elif request.kind == "event":
                stats.events += 1
            if response is None:
                stats.window_errors += 1
                continue
            if response.status_code >= 500:
                stats.window_errors += 1
            if response.status_code != 200:
                stats.example(
                    f"{request.method} {request.path}: {response.status_code} {response.text[:200]}"
                )
                continue
            try:
                data = orjson.loads(response.content)
            except orjson.JSONDecodeError:
                data = None
            problem = self.traffic.check(request, data)
            if problem is not None:
                stats.invalid += 1
                stats.example(f"{request.method} {request.path}: {problem}")
                continue
            assert isinstance(data, dict)
            if request.kind == "recommend":
                stats.policies[str(data.get("policy"))] += 1
                stats.cached += bool(data.get("cached"))
            elif request.kind == "batch":
                stats.accepted += int(data.get("accepted") or 0)
            elif request.kind == "event" and request.expect == "accepted":
                stats.accepted += 1
            elif request.kind == "feedback" and request.expect == "recorded":
                stats.accepted += 1
                stats.joins[str(data.get("joinMethod"))] += 1

    async def _sampler(self, probe: Any) -> None:
        interval = self.args.sample_interval
        next_at = self.started + interval
        while True:
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))
            next_at += interval
            await self._sample(probe)

    async def _sample(self, probe: Any, final: bool = False) -> dict[str, Any]:
        import httpx

        now = time.monotonic()
        facts = proc_facts(self.pid)
        sample: dict[str, Any] = {
            "t": round(now - self.started, 1),
            "phase": "end" if final else ("warmup" if now < self.measure_from else "load"),
            "rss_mb": round(rss_mb(self.pid), 1),
            **facts,
        }
        for name, pid in self.extra_pids.items():
            sample[f"{name}_rss_mb"] = round(rss_mb(pid), 1)
        try:
            values = parse_metrics((await probe.get("/metrics")).text)
        except httpx.HTTPError as exc:
            sample["metrics_error"] = f"{type(exc).__name__}: {exc}"[:200]
        else:
            g = gauges(values)
            sample.update(
                outbox_backlog=g.backlog,
                outbox_oldest_age_s=g.oldest_age_s,
                consumer_lag=g.lag,
                lag_groups=g.lag_groups,
                impressions_pending=g.impressions_pending,
            )
        for kind, stats in self.stats.items():
            window = sorted(stats.window_ms)
            sample[kind] = {
                "n": len(window),
                "errors": stats.window_errors,
                "p50_ms": round(percentile(window, 50), 2) if window else None,
                "p99_ms": round(percentile(window, 99), 2) if window else None,
            }
            stats.window_ms = []
            stats.window_errors = 0
        sample["client_send_lag_max_ms"] = round(self.window_send_lag_ms, 1)
        self.window_send_lag_ms = 0.0
        previous = self.outcome.samples[-1] if self.outcome.samples else None
        if previous is not None and sample["t"] > previous["t"]:
            sample["cores"] = round(
                (facts["cpu_s"] - previous["cpu_s"]) / (sample["t"] - previous["t"]), 3
            )
        self.outcome.samples.append(sample)
        with self.samples_file.open("a") as out:
            out.write(json.dumps(sample) + "\n")
        print(
            f"[bench] t={sample['t']:.0f}s {sample['phase']}: rss {sample['rss_mb']:.1f} MB, "
            f"outbox {sample.get('outbox_backlog')}, lag {sample.get('consumer_lag')}, "
            f"impressions pending {sample.get('impressions_pending')}, "
            + ", ".join(
                f"{k} {sample[k]['n']} (p99 {sample[k]['p99_ms']}, err {sample[k]['errors']})"
                for k in self.kinds
            ),
            file=sys.stderr,
        )
        return sample

    async def _drain(self, probe: Any, load_end: float) -> None:
        import httpx

        deadline = load_end + self.args.drain_timeout
        streak_from: float | None = None
        streak = 0
        while time.monotonic() < deadline:
            now = time.monotonic()
            try:
                g = gauges(parse_metrics((await probe.get("/metrics")).text))
            except httpx.HTTPError:
                g = None
            if g is not None:
                self.outcome.drain_last = g
            if g is not None and g.drained:
                streak += 1
                streak_from = now if streak_from is None else streak_from
                if streak >= 3:
                    self.outcome.drain_s = streak_from - load_end
                    print(
                        f"[bench] drained {self.outcome.drain_s:.1f} s after the load stopped",
                        file=sys.stderr,
                    )
                    return
            else:
                streak, streak_from = 0, None
            await asyncio.sleep(1.0)
        print(f"[bench] NOT drained within {self.args.drain_timeout:.0f} s: {g}", file=sys.stderr)


def run_soak(soak: Soak) -> Outcome:
    import uvloop

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(soak.run())


# --------------------------------------------------------------------------------------------
# Checks after the drain: Postgres, the broker, the server's log
# --------------------------------------------------------------------------------------------
def db_counts(url: str, schema: str) -> dict[str, int]:
    assert ingest._SCHEMA_NAME.match(schema)
    queries = {
        "raw_events": f"SELECT count(*) FROM {schema}.raw_events",  # noqa: S608
        "impressions": f"SELECT count(*) FROM {schema}.impressions",  # noqa: S608
        "feedback_explicit": f"SELECT count(*) FROM {schema}.feedback WHERE source = 'explicit'",  # noqa: S608
        "feedback_implicit": f"SELECT count(*) FROM {schema}.feedback WHERE source = 'implicit'",  # noqa: S608
        "outbox_unsent": f"SELECT count(*) FROM {schema}.outbox "  # noqa: S608
        "WHERE sent_at IS NULL AND set_aside_at IS NULL",
        "outbox_set_aside": f"SELECT count(*) FROM {schema}.outbox WHERE set_aside_at IS NOT NULL",  # noqa: S608
        "dead_letters": f"SELECT count(*) FROM {schema}.dead_letters",  # noqa: S608
    }
    return {name: int(pg(url, sql)) for name, sql in queries.items()}


def broker_lag(bootstrap: str, topic: str) -> dict[str, int] | str:
    """Per consumer group: end offsets minus committed offsets of the events topic, as the
    broker sees them (independent of the service's gauges)."""

    async def run() -> dict[str, int]:
        from aiokafka import AIOKafkaConsumer, TopicPartition
        from aiokafka.admin import AIOKafkaAdminClient

        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        await consumer.start()
        await admin.start()
        try:
            await consumer.topics()  # metadata of every topic
            partitions = consumer.partitions_for_topic(topic) or set()
            tps = [TopicPartition(topic, p) for p in sorted(partitions)]
            ends = await consumer.end_offsets(tps)
            lags = {}
            for group in CONSUMER_GROUPS:
                committed = await admin.list_consumer_group_offsets(group, partitions=tps)
                lag = 0
                for tp in tps:
                    meta = committed.get(tp)
                    offset = meta.offset if meta is not None and meta.offset >= 0 else 0
                    lag += max(ends[tp] - offset, 0)
                lags[group] = lag
            return lags
        finally:
            await admin.close()
            await consumer.stop()

    try:
        return asyncio.run(asyncio.wait_for(run(), 60))
    except Exception as exc:  # a cross-check: report why it could not run
        return f"unavailable: {type(exc).__name__}: {exc}"[:300]


def log_problems(log: Path) -> Counter[str]:
    """Warning and error lines of the server's JSON log, by level and event name."""
    counts: Counter[str] = Counter()
    with contextlib.suppress(OSError), log.open(errors="replace") as lines:
        for line in lines:
            line = line.strip()
            if not line or '"level":"info"' in line or '"level": "info"' in line:
                continue
            try:
                record = json.loads(line)
            except ValueError:
                counts["(non-JSON lines: tracebacks, ...)"] += 1
                continue
            level = str(record.get("level", "")).lower() if isinstance(record, dict) else ""
            if level in ("warning", "error", "critical", "exception"):
                counts[f"{level}: {record.get('event')}"] += 1
    return counts


# --------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------
def _ms(value: float) -> str:
    return "—" if math.isnan(value) else f"{value:,.1f} ms"


def _mb(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return f"{value:,.1f} MB"


def _secs(value: Any) -> str:
    return "—" if value is None else f"{value:,.1f} s"


def _num(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return f"{value:,.0f}"


def rss_slope(samples: list[dict[str, Any]]) -> float:
    """Least-squares slope of RSS over time, MB per hour (NaN under 3 samples)."""
    if len(samples) < 3:
        return math.nan
    ts: list[float] = [s["t"] / 3600 for s in samples]
    ys: list[float] = [s["rss_mb"] for s in samples]
    mean_t, mean_y = sum(ts) / len(ts), sum(ys) / len(ys)
    var = sum((t - mean_t) ** 2 for t in ts)
    if var <= 0:
        return math.nan
    return sum((t - mean_t) * (y - mean_y) for t, y in zip(ts, ys, strict=True)) / var


def summarize(report: Report) -> dict[str, Any]:
    """The run's numbers (the JSON summary; the markdown is rendered from it)."""
    args, outcome = report.args, report.outcome
    assert outcome is not None
    stats, samples = outcome.stats, outcome.samples
    measured = [s for s in samples if s["phase"] == "load"]
    during = [s for s in samples if s["phase"] in ("warmup", "load", "end")]
    baseline = measured[0] if measured else (during[0] if during else None)
    end = during[-1] if during else None
    rss_start = baseline["rss_mb"] if baseline else math.nan
    rss_end = end["rss_mb"] if end else math.nan
    post = [s for s in during if baseline is not None and s["t"] >= baseline["t"]]
    slope = rss_slope(post)
    half = post[len(post) // 2 :]
    slope_half = rss_slope(half)

    def peak(name: str) -> float | None:
        values = [s[name] for s in during if s.get(name) is not None]
        return max(values) if values else None

    drain_last = outcome.drain_last
    kinds: dict[str, Any] = {}
    for kind, st in stats.items():
        if not st.requests and not st.dropped:
            continue
        ordered = sorted(st.latencies_ms)
        kinds[kind] = {
            "requests": st.requests,
            "req_s": round(st.requests / outcome.load_s, 2) if outcome.load_s else None,
            "statuses": dict(st.statuses.most_common()),
            "errors": st.errors,
            "unexpected_4xx": st.client_errors,
            "invalid_answers": st.invalid,
            "dropped_by_client": st.dropped,
            "p50_ms": round(percentile(ordered, 50), 2),
            "p99_ms": round(percentile(ordered, 99), 2),
            "max_ms": round(ordered[-1], 2) if ordered else None,
            "retries_answered_duplicate": st.duplicates_expected,
            "examples": st.examples,
        }
        if kind in ("event", "batch"):
            kinds[kind]["events_sent"] = st.events
            kinds[kind]["events_accepted"] = st.accepted
        if kind == "recommend":
            kinds[kind]["policies"] = dict(st.policies.most_common())
            kinds[kind]["cached"] = st.cached
        if kind == "feedback":
            kinds[kind]["joins"] = dict(st.joins.most_common())
    before, after = outcome.metrics_before, outcome.metrics_after
    server = {
        name: round(metric_sum(after, name) - metric_sum(before, name))
        for name in (
            "recommend_fallbacks_total",
            "dead_letters_total",
            "outbox_set_aside_total",
            "outbox_publish_failures_total",
            "impressions_dropped_total",
            "online_feature_store_failures_total",
            "processed_features_publish_failures_total",
        )
    }
    server["http_5xx"] = round(http_5xx(after) - http_5xx(before))
    return {
        "commit": git_commit(),
        "command": report.run.command,
        "rate_req_s": args.rate,
        "mix": args.mix,
        "duration_s": round(outcome.load_s, 1),
        "warmup_s": round(outcome.warmup_s, 1),
        "requests": {k: v["requests"] for k, v in kinds.items()},
        "errors": {k: v["errors"] for k, v in kinds.items()},
        "kinds": kinds,
        "rss_mb": {
            "after_warmup": rss_start,
            "end_of_load": rss_end,
            "after_drain": round(outcome.rss_after_drain_mb, 1),
            "growth_mb": round(rss_end - rss_start, 1),
            "growth_pct": round(100 * (rss_end - rss_start) / rss_start, 2) if rss_start else None,
            "min": min((s["rss_mb"] for s in post), default=None),
            "max": max((s["rss_mb"] for s in post), default=None),
            "slope_mb_per_h": round(slope, 1) if not math.isnan(slope) else None,
            "slope_over_s": round(post[-1]["t"] - post[0]["t"]) if post else None,
            "slope_last_half_mb_per_h": None if math.isnan(slope_half) else round(slope_half, 1),
            "slope_last_half_over_s": round(half[-1]["t"] - half[0]["t"]) if half else None,
        },
        "threads": {
            "after_warmup": baseline and baseline["threads"],
            "end": end and end["threads"],
        },
        "open_files": {"after_warmup": baseline and baseline["fds"], "end": end and end["fds"]},
        "outbox_backlog": {"max": peak("outbox_backlog"), "end": drain_last and drain_last.backlog},
        "outbox_oldest_age_s": {"max": peak("outbox_oldest_age_s")},
        "consumer_lag": {"max": peak("consumer_lag"), "end": drain_last and drain_last.lag},
        "impressions_pending": {
            "max": peak("impressions_pending"),
            "end": drain_last and drain_last.impressions_pending,
        },
        "drain": {
            "drained": outcome.drain_s is not None,
            "seconds": round(outcome.drain_s, 1) if outcome.drain_s is not None else None,
            "timeout_s": args.drain_timeout,
        },
        "client": {
            "cores": round(outcome.client_cpu, 3),
            "send_lag_p99_ms": round(percentile(outcome.send_lag_ms, 99), 2),
        },
        "server_counters": server,
        "checks": report.checks,
        "samples": len(samples),
        "logs": str(report.logs) if report.logs else None,
        "failures": report.failures,
        "ok": not report.failures,
    }


def find_failures(report: Report, summary: dict[str, Any]) -> list[str]:
    failures = []
    for kind, data in summary["kinds"].items():
        for key, what in (
            ("errors", "errors (5xx, timeouts, connection errors)"),
            ("unexpected_4xx", "unexpected 4xx answers"),
            ("invalid_answers", "answers that broke their expectation"),
            ("dropped_by_client", "requests dropped (the client could not hold the rate)"),
        ):
            if data[key]:
                failures.append(f"{kind}: {data[key]:,} {what}")
    if not summary["drain"]["drained"]:
        failures.append(
            f"backlogs not back to 0 within {report.args.drain_timeout:.0f} s: outbox "
            f"{summary['outbox_backlog']['end']}, lag {summary['consumer_lag']['end']}, "
            f"impressions pending {summary['impressions_pending']['end']}"
        )
    checks = report.checks
    for name, ok in checks.get("ok", {}).items():
        if not ok:
            failures.append(f"check failed: {name}")
    return failures


def render(report: Report, summary: dict[str, Any]) -> str:
    args, outcome = report.args, report.outcome
    assert outcome is not None
    mix = parse_mix(args.mix)
    total = sum(mix.values())
    mix_text = ", ".join(f"{k} {100 * v / total:.0f}%" for k, v in mix.items() if v)
    lines = [
        *report.run.head(START_MARKER, "Soak (`bench/soak.py`)", ram=True),
        "- Service: `recommender serve` as docker-compose.yml runs it: Postgres (a fresh schema, "
        "dropped afterwards), Redis, Tansu (Kafka protocol, ENABLE_KAFKA=true), the consumers and "
        "the outbox relay inside `serve` (ENABLE_CONSUMERS=true), ACCESS_LOG, IMPRESSION_LOGGING "
        "and the near cache at their defaults (on); one uvicorn process on the same machine as "
        "the load generator, Postgres, Redis and the broker.",
        *(f"- {line}" for line in report.setup),
        f"- Sample check: {report.sample}",
        f"- Load: {args.rate:g} req/s in total for {summary['duration_s']:,.0f} s, open loop (a "
        "Python asyncio httpx client sends each request at its scheduled instant over "
        f"{args.connections} keep-alive connections; latency from the scheduled instant), mix "
        f"{mix_text}. Users: the world's {args.users:,} (drawn by their activity) and "
        f"{args.new_users:,} without history; single events watch/search/rating/favorite "
        f"60/15/15/10% on movies just recommended, of the user's genres or popular; batches of "
        f"{args.batch_min}-{args.batch_max} such events; `GET /recommend` k={args.k}, context "
        "home/detail:<movie>/similar:<movie>/search 60/15/15/10%; feedback (click/watch/dismiss/"
        f"like) on the recommendationIds received; {args.retry_share:.0%} of events and feedback "
        "resent with their requestId (must answer `duplicate`). Errors: 5xx, timeouts (10 s) and "
        "connection errors; a 4xx or a wrong answer is counted apart; both fail the run.",
        f"- Samples every {args.sample_interval:g} s: the server's RSS (/proc), threads, open "
        "files; `outbox_backlog`, the sum of `consumer_lag` (3 groups x partitions) and "
        "`impressions_pending` from /metrics. Latency, RSS baseline: after a "
        f"{outcome.warmup_s:.0f} s warm-up (requests and errors: the whole run).",
        "",
        "| Kind | Requests | req/s | Errors | 4xx / wrong answers | p50 | p99 | max | Notes |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for kind, data in summary["kinds"].items():
        notes = []
        if kind in ("event", "batch"):
            notes.append(f"{data['events_accepted']:,} events accepted")
        if data["retries_answered_duplicate"]:
            notes.append(f"{data['retries_answered_duplicate']:,} retries")
        if kind == "recommend":
            policies = ", ".join(f"{p} {n:,}" for p, n in data["policies"].items())
            notes.append(f"policies: {policies}; cached {data['cached']:,}")
        if kind == "feedback":
            notes.append("joins: " + ", ".join(f"{j} {n:,}" for j, n in data["joins"].items()))
        if data["dropped_by_client"]:
            notes.append(f"**{data['dropped_by_client']:,} dropped by the client**")
        lines.append(
            f"| {kind} | {data['requests']:,} | {data['req_s']:,.1f} | **{data['errors']:,}** "
            f"| {data['unexpected_4xx']:,} / {data['invalid_answers']:,} "
            f"| {_ms(data['p50_ms'])} | {_ms(data['p99_ms'])} "
            f"| {_ms(data['max_ms'] if data['max_ms'] is not None else math.nan)} "
            f"| {'; '.join(notes)} |"
        )
    rss = summary["rss_mb"]
    drain = summary["drain"]
    drain_text = (
        f"{drain['seconds']:.1f} s"
        if drain["drained"]
        else f"**not within {drain['timeout_s']:g} s**"
    )
    lines += [
        "",
        "| Measure | Value |",
        "|---|---|",
        f"| Server RSS after the warm-up → end of the load | {_mb(rss['after_warmup'])} → "
        f"{_mb(rss['end_of_load'])}: **{rss['growth_mb']:+,.1f} MB"
        + (f" ({rss['growth_pct']:+.1f}%)" if rss["growth_pct"] is not None else "")
        + "** |",
        f"| RSS over the measured samples: min / max | {_mb(rss['min'])} / {_mb(rss['max'])} |",
        "| RSS trend: least-squares slope over the measured samples; over their second half | "
        + (
            f"{rss['slope_mb_per_h']:+,.1f} MB/h over {rss['slope_over_s']:,} s"
            if rss["slope_mb_per_h"] is not None
            else "—"
        )
        + "; "
        + (
            f"{rss['slope_last_half_mb_per_h']:+,.1f} MB/h over {rss['slope_last_half_over_s']:,} s"
            if rss["slope_last_half_mb_per_h"] is not None
            else "—"
        )
        + " |",
        f"| RSS after the drain | {_mb(rss['after_drain'])} |",
        "| Threads, open files: after the warm-up → end | "
        f"{_num(summary['threads']['after_warmup'])} → {_num(summary['threads']['end'])}, "
        f"{_num(summary['open_files']['after_warmup'])} → {_num(summary['open_files']['end'])} |",
        f"| Outbox backlog: max during the run / at the end | "
        f"{_num(summary['outbox_backlog']['max'])} / {_num(summary['outbox_backlog']['end'])} |",
        "| Oldest unpublished outbox row: max age in a sample | "
        f"{_secs(summary['outbox_oldest_age_s']['max'])} |",
        f"| Consumer lag (sum): max during the run / at the end | "
        f"{_num(summary['consumer_lag']['max'])} / {_num(summary['consumer_lag']['end'])} |",
        f"| Impressions pending: max / at the end | {_num(summary['impressions_pending']['max'])} "
        f"/ {_num(summary['impressions_pending']['end'])} |",
        f"| Time to drain after the load stopped (all three at 0, three reads 1 s apart) | "
        f"{drain_text} |",
    ]
    checks = report.checks
    stored = checks.get("stored", {})
    if stored:
        lines.append(
            f"| Postgres after the drain | {stored['new_raw_events']:,} new raw_events for "
            f"{stored['events_accepted']:,} accepted events; {stored['new_impressions']:,} "
            f"impressions for {stored['recommend_answers']:,} answers; "
            f"{stored['new_feedback_explicit']:,} explicit feedback rows for "
            f"{stored['feedback_recorded']:,} recorded, {stored['new_feedback_implicit']:,} "
            f"implicit; outbox unsent {stored['outbox_unsent']:,}, set aside "
            f"{stored['outbox_set_aside']:,}; dead letters {stored['dead_letters']:,} |"
        )
    broker = checks.get("broker_lag")
    if broker is not None:
        text = (
            ", ".join(f"`{g}` {n:,}" for g, n in broker.items())
            if isinstance(broker, dict)
            else broker
        )
        lines.append(f"| Broker lag after the drain (end minus committed offsets) | {text} |")
    server = summary["server_counters"]
    lines.append(
        "| Server counters over the run | "
        + ", ".join(f"{name} {value:,}" for name, value in server.items())
        + " |"
    )
    problems = checks.get("log_problems") or {}
    lines.append(
        "| Server log: warnings and errors | "
        + (", ".join(f"{k} {n:,}" for k, n in problems.items()) or "none")
        + " |"
    )
    client = summary["client"]
    lines.append(
        f"| Load generator | {client['cores']:.2f} cores; send lag p99 "
        f"{client['send_lag_p99_ms']:.1f} ms |"
    )
    lines += ["", *timeline(outcome, [k for k in KINDS if k in summary["kinds"]])]
    verdict = (
        "**passed**: no errors, every backlog back to 0"
        if not report.failures
        else "**failed**: " + "; ".join(report.failures)
    )
    lines += ["", f"- Verdict: {verdict}."]
    return close_section(lines, report.notes, END_MARKER)


def timeline(outcome: Outcome, kinds: list[str], rows: int = 13) -> list[str]:
    """Up to `rows` samples, evenly spaced, the first and the last included."""
    samples = [s for s in outcome.samples if s["phase"] in ("warmup", "load", "end")]
    if not samples:
        return []
    if len(samples) > rows:
        step = (len(samples) - 1) / (rows - 1)
        samples = [samples[round(i * step)] for i in range(rows)]
    head = (
        "| t | phase | RSS | threads | files | server cores | outbox | lag | impressions pending | "
        + " | ".join(f"{k} n / p99" for k in kinds)
        + " | errors | client send lag max |"
    )
    lines = [
        f"Timeline (every {len(outcome.samples)} samples thinned to {len(samples)}; each row's "
        "latency and counts are over the interval before it):",
        "",
        head,
        "|" + "---:|" * 9 + "---:|" * len(kinds) + "---:|---:|",
    ]
    for s in samples:
        cells = [f"{int(s['t']) // 60}:{int(s['t']) % 60:02d}", s["phase"], f"{s['rss_mb']:.1f} MB"]
        cells += [_num(s.get("threads")), _num(s.get("fds"))]
        cores = s.get("cores")
        cells.append(f"{cores:.2f}" if isinstance(cores, float) else "—")
        cells += [_num(s.get("outbox_backlog")), _num(s.get("consumer_lag"))]
        cells.append(_num(s.get("impressions_pending")))
        for k in kinds:
            w = s.get(k) or {}
            p99 = w.get("p99_ms")
            cells.append(f"{w.get('n', 0):,} / " + ("—" if p99 is None else f"{p99:,.1f} ms"))
        cells.append(f"{sum((s.get(k) or {}).get('errors', 0) for k in kinds):,}")
        cells.append(_ms(s.get("client_send_lag_max_ms", math.nan)))
        lines.append("| " + " | ".join(cells) + " |")
    return lines


# --------------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------------
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=float, default=1800, help="Seconds of load.")
    parser.add_argument(
        "--warmup",
        type=float,
        default=60,
        help="Seconds before the RSS baseline and latency (at most half of --duration).",
    )
    parser.add_argument("--rate", type=float, default=200, help="Requests per second in total.")
    parser.add_argument(
        "--mix",
        default="recommend=50,event=30,feedback=18,batch=2",
        help="Share of each kind of request (recommend, event, feedback, batch).",
    )
    parser.add_argument("--connections", type=int, default=32, help="Keep-alive connections.")
    parser.add_argument("--k", type=int, default=10, help="k of GET /recommend.")
    parser.add_argument("--batch-min", type=int, default=5, help="Fewest events in a batch.")
    parser.add_argument("--batch-max", type=int, default=50, help="Most events in a batch.")
    parser.add_argument(
        "--retry-share", type=float, default=0.01, help="Share of events and feedback resent."
    )
    parser.add_argument("--sample-interval", type=float, default=10.0, help="Seconds.")
    parser.add_argument(
        "--drain-timeout", type=float, default=120.0, help="Seconds to wait for 0 backlogs."
    )
    parser.add_argument(
        "--setup-timeout", type=float, default=900.0, help="Seconds for the world to drain."
    )
    parser.add_argument("--users", type=int, default=3000, help="Users of the world.")
    parser.add_argument("--new-users", type=int, default=1000, help="Users without history.")
    parser.add_argument("--movies", type=int, default=1000, help="Movies of the world.")
    parser.add_argument("--days", type=int, default=90, help="Days of the world's history.")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--train-threads", type=int, default=2, help="TRAIN_THREADS.")
    parser.add_argument(
        "--service-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="An extra environment variable for the `recommender` commands (repeatable).",
    )
    parser.add_argument("--write", type=Path, help="Markdown file to update (docs/benchmarks.md).")
    add_store_args(parser)
    args = parser.parse_args(argv)
    if args.duration < 10 or args.rate <= 0 or args.connections < 1:
        parser.error("--duration must be at least 10 s, --rate and --connections positive")
    if not 1 <= args.batch_min <= args.batch_max <= 1000:
        parser.error("need 1 <= --batch-min <= --batch-max <= 1000")
    if any("=" not in item for item in args.service_env):
        parser.error("--service-env takes NAME=VALUE")
    try:
        parse_mix(args.mix)
    except ValueError as exc:
        parser.error(str(exc))
    return args


@contextlib.contextmanager
def serve(env: dict[str, str], log: Path) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    port = free_port()
    with ingest.server(
        [str(VENV_BIN / "recommender"), "serve", "--port", str(port)],
        env,
        log,
        f"http://127.0.0.1:{port}/api/v1/health/ready",
        "service",
    ) as process:
        yield process, f"http://127.0.0.1:{port}"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    report = Report(args, Run.of("bench/soak.py", argv))

    space_cm = ingest.workspace(report.run, "soak", args.database_url, args.redis_url)
    with space_cm as (stack, space):
        work, logs, schema = space.work, space.logs, space.schema
        report.logs = logs
        kafka = ingest.start_kafka(stack, logs)
        env = recommend.base_env(args, schema, space.redis_prefix, work, kafka)
        world, version = prepare(args, report, env, work, logs)
        traffic = Traffic(world, args.new_users, args)
        sample_user = world.users[0].user_id
        del world
        service_log = logs / "service.log"
        with serve(env, service_log) as (process, base):
            drained = wait_until_drained(base, args.setup_timeout, "the world's events")
            wait_for_model(base, version, 120)
            report.setup.append(
                f"The world's events through the relay and the three consumers (outbox backlog, "
                f"consumer lag 0) {drained:.0f} s after the service was up."
            )
            report.sample = recommend.sample_check(base, sample_user)
            print(f"[bench] sample: {report.sample}", file=sys.stderr)
            before = db_counts(args.database_url, schema)
            soak = Soak(
                args,
                base,
                process.pid,
                traffic,
                logs / "samples.jsonl",
                {"tansu": kafka.process.pid},
                lambda: process.poll() is None,
            )
            report.outcome = outcome = run_soak(soak)
            if soak.stopped_early:
                report.failures.append(soak.stopped_early)
            after = db_counts(args.database_url, schema)
            stats = outcome.stats
            accepted = stats["event"].accepted + stats["batch"].accepted
            answers = stats["recommend"].statuses.get("200", 0) - stats["recommend"].invalid
            recorded = stats["feedback"].accepted  # answers that said "recorded"
            stored = {
                "new_raw_events": after["raw_events"] - before["raw_events"],
                "events_accepted": accepted,
                "new_impressions": after["impressions"] - before["impressions"],
                "recommend_answers": answers,
                "new_feedback_explicit": after["feedback_explicit"] - before["feedback_explicit"],
                "feedback_recorded": recorded,
                "new_feedback_implicit": after["feedback_implicit"] - before["feedback_implicit"],
                "outbox_unsent": after["outbox_unsent"],
                "outbox_set_aside": after["outbox_set_aside"],
                "dead_letters": after["dead_letters"],
            }
            report.checks["stored"] = stored
            report.checks["broker_lag"] = broker_lag(
                kafka.bootstrap, f"{schema}.interaction_events"
            )
            broker = report.checks["broker_lag"]
            report.checks["ok"] = {
                "every accepted event stored (new raw_events >= accepted)": (
                    stored["new_raw_events"] >= accepted
                ),
                "an impression per answer (new impressions >= answers)": (
                    stored["new_impressions"] >= answers
                ),
                "a row per recorded feedback": stored["new_feedback_explicit"] == recorded,
                "no unsent outbox row in Postgres": stored["outbox_unsent"] == 0,
                "nothing set aside or dead-lettered": (
                    stored["outbox_set_aside"] == before["outbox_set_aside"]
                    and stored["dead_letters"] == before["dead_letters"]
                ),
                "broker lag 0 for every group": (
                    not isinstance(broker, dict) or not any(broker.values())
                ),
            }
        report.checks["log_problems"] = dict(log_problems(service_log).most_common())
        report.run.done()

    summary = summarize(report)
    report.failures += find_failures(report, summary)
    summary["failures"], summary["ok"] = report.failures, not report.failures
    publish(render(report, summary), args.write, START_MARKER, END_MARKER)
    text = json.dumps(summary, indent=2, default=str)
    if report.logs is not None and report.logs.exists():
        (report.logs / "summary.json").write_text(text + "\n")
    print(text)
    return 0 if not report.failures else 1


if __name__ == "__main__":
    raise SystemExit(main())
