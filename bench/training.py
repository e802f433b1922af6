"""Training benchmark: the real pipeline (`training.pipeline.train_model`) on synthetic worlds of
100k and 1M events: wall time per stage and peak memory of the process that trains.

    .venv/bin/python bench/training.py [--sizes 100k,1m] [--timeout-min 30] [--max-rss-gb 16]
                                       [--profile] [--write docs/benchmarks.md]

Per size:

1. A generator child process: `generate_world(seed, users=, movies=, days=)`, sized to a little
   more than the target, trimmed to the first N events by clientTimestamp (what the store would
   hold at that moment), written as a world JSON Lines file (`write_world`) to
   bench/results/training-<time>/ (git-ignored; deleted at the end unless --keep).
2. A training child process that does what `recommender train --events-file FILE` does, minus
   writing the artifact: `read_world` -> `world_events`/`world_catalog` -> `train_model` with
   FitConfig(threads=--threads) (features, inner tuning, outer holdout evaluation, production
   fit). Inside it, the main functions of the pipeline are wrapped with timers (module attributes
   patched in that process only; nothing in src/ changes) so that the wall time splits into a
   tree of stages (inclusive seconds, calls, own time); the process's VmHWM is read after each
   coarse stage (how far the peak grew inside it) and after loading the input.
3. The parent samples the child's VmRSS every 0.5 s. Past --timeout-min minutes or
   --max-rss-gb, it takes a `py-spy dump` of the child (where it is), stops it (SIGTERM, then
   SIGKILL; only that pid) and reports what was reached. Peak RSS = ru_maxrss of that child from
   os.wait4 (the kernel's high-water mark of the whole process: input loading included).
   --profile records the training child with py-spy (speedscope, 50 Hz; a separate, slower run
   is not needed: py-spy samples from outside) and prints the top functions.
4. Prints a markdown section; --write replaces the section between the bench:training markers of
   the given file (appended if it has no markers).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import gc
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/report.py

from report import ROOT, Run, close_section, markers, publish

START_MARKER, END_MARKER = markers("training")


@dataclass(frozen=True)
class Size:
    label: str
    events: int
    users: int
    movies: int
    days: int


SIZES = {
    # ~111k generated at these arguments; the EASE (+ ALS) path: 1,000 items <= ease_max_items.
    "100k": Size("100k", 100_000, 5_000, 1_000, 60),
    # ~1.15M generated in ~8 s; the ALS-only path: 10,000 items > ease_max_items.
    "1m": Size("1m", 1_000_000, 50_000, 10_000, 60),
}


# --------------------------------------------------------------------------------------------
# /proc helpers
# --------------------------------------------------------------------------------------------
def proc_status_kb(pid: int | str, key: str) -> int:
    """A kB field of /proc/PID/status (VmRSS, VmHWM), 0 when unreadable."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def mib(kb: float) -> str:
    return f"{kb / 1024:,.0f} MiB"


# --------------------------------------------------------------------------------------------
# Child 1: the world file
# --------------------------------------------------------------------------------------------
def child_generate(args: argparse.Namespace) -> int:
    from interaction_recommender.demo.world import World, generate_world, write_world

    size = SIZES[args.size]
    started = time.perf_counter()
    world = generate_world(args.seed, movies=size.movies, users=size.users, days=size.days)
    generated = len(world.events)
    seconds = time.perf_counter() - started
    if generated < size.events:
        raise SystemExit(
            f"generate_world made {generated:,} events, fewer than {size.events:,}: more days"
        )
    events = world.events[: size.events]  # sorted by clientTimestamp: the first N by time
    trimmed = World(movies=world.movies, events=events, users=world.users)
    write_world(trimmed, args.world)
    info = {
        "generated": generated,
        "generateSeconds": round(seconds, 2),
        "events": len(events),
        "users": len({e["userId"] for e in events}),
        "moviesTouched": len({e["movieId"] for e in events if e.get("movieId")}),
        "movies": len(world.movies),
        "from": events[0]["clientTimestamp"],
        "until": events[-1]["clientTimestamp"],
        "maxRssKb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
    }
    Path(args.out).write_text(json.dumps(info))
    return 0


# --------------------------------------------------------------------------------------------
# Child 2: training, instrumented
# --------------------------------------------------------------------------------------------
@dataclass
class Node:
    seconds: float = 0.0
    calls: int = 0
    hwm_growth_kb: int = 0
    """How far VmHWM rose during the calls (coarse stages only)."""
    hwm_after_kb: int = 0
    children: dict[str, Node] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "seconds": round(self.seconds, 3),
            "calls": self.calls,
            "hwmGrowthKb": self.hwm_growth_kb,
            "hwmAfterKb": self.hwm_after_kb,
            "children": {k: v.as_dict() for k, v in self.children.items()},
        }


class Timers:
    """Wrap module functions with inclusive timers that nest: a tree keyed by call path."""

    def __init__(self) -> None:
        self.root = Node()
        self.stack = [self.root]

    def wrap(self, module: Any, name: str, *, coarse: bool = False) -> None:
        original = getattr(module, name)
        if getattr(original, "_bench_timed", False):
            return
        label = name
        timers = self

        @functools.wraps(original)
        def timed(*args: Any, **kwargs: Any) -> Any:
            parent = timers.stack[-1]
            node = parent.children.get(label)
            if node is None:
                node = parent.children[label] = Node()
            timers.stack.append(node)
            hwm = proc_status_kb("self", "VmHWM") if coarse else 0
            started = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                node.seconds += time.perf_counter() - started
                node.calls += 1
                if coarse:
                    after = proc_status_kb("self", "VmHWM")
                    node.hwm_growth_kb += after - hwm
                    node.hwm_after_kb = after
                timers.stack.pop()

        timed._bench_timed = True  # type: ignore[attr-defined]
        setattr(module, name, timed)


def instrument(timers: Timers) -> None:
    from interaction_recommender.training import dataset, fit, pipeline

    # The pipeline's steps (names as pipeline.py imported them).
    for name in ("split_events", "holdout_split", "tune", "fit_model", "evaluate_holdout"):
        timers.wrap(pipeline, name, coarse=True)
    timers.wrap(pipeline, "features_by_user", coarse=True)
    timers.wrap(pipeline, "build_catalog_view")
    timers.wrap(pipeline, "recommend")
    timers.wrap(pipeline, "ranking_metrics")
    # Inside tune / fit_model.
    for name in (
        "training_data",
        "_fit",
        "_als",
        "ease_weights",
        "_cosine_neighbors",
        "_tuning_cases",
        "_tune_ranker",
        "_calibration_ndcg",
    ):
        timers.wrap(fit, name, coarse=True)
    for name in ("_fold_in_all", "_ndcg", "_trending", "_sample_users", "_relevant"):
        timers.wrap(fit, name)
    timers.wrap(fit, "_top_per_row")
    timers.wrap(fit, "candidate_rows")
    timers.wrap(fit, "build_catalog_view")
    # Inside the dataset functions: per-user feature extraction and labels.
    timers.wrap(dataset, "build_features")
    timers.wrap(dataset, "user_labels")


def child_train(args: argparse.Namespace) -> int:
    import structlog

    structlog.configure(
        wrapper_class=structlog.make_filtering_bound_logger(20),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
    )
    from interaction_recommender.demo.events import world_catalog, world_events
    from interaction_recommender.demo.world import read_world
    from interaction_recommender.training.fit import FitConfig
    from interaction_recommender.training.pipeline import train_model

    marks: list[dict[str, Any]] = []

    def mark(label: str, since: float) -> None:
        marks.append(
            {
                "stage": label,
                "at": round(time.perf_counter() - since, 2),
                "rssKb": proc_status_kb("self", "VmRSS"),
                "hwmKb": proc_status_kb("self", "VmHWM"),
            }
        )
        print(f"[child] {marks[-1]}", file=sys.stderr, flush=True)

    started = time.perf_counter()
    world = read_world(args.world)
    mark("read_world", started)
    events, catalog = world_events(world), world_catalog(world)
    del world
    gc.collect()
    load_seconds = time.perf_counter() - started
    mark("events and catalog ready", started)

    timers = Timers()
    instrument(timers)
    trained = time.perf_counter()
    result = train_model(
        events,
        catalog,
        config=FitConfig(threads=args.threads),
        version="bench",
        progress=lambda stage: mark(stage, trained),
    )
    train_seconds = time.perf_counter() - trained
    mark("done", trained)
    info = result.model.info
    out = {
        "loadSeconds": round(load_seconds, 2),
        "trainSeconds": round(train_seconds, 2),
        "resultSeconds": round(result.seconds, 2),
        "marks": marks,
        "tree": timers.root.as_dict(),
        "metrics": result.metrics,
        "model": {
            "users": info.get("users"),
            "items": info.get("items"),
            "positives": info.get("positives"),
            "params": info.get("params"),
            "ease": result.model.ease is not None,
            "factors": None
            if result.model.item_factors is None
            else list(result.model.item_factors.shape),
        },
        "hwmKb": proc_status_kb("self", "VmHWM"),
    }
    Path(args.out).write_text(json.dumps(out, default=str))
    return 0


# --------------------------------------------------------------------------------------------
# Parent: run the children, watch them
# --------------------------------------------------------------------------------------------
@dataclass
class ChildRun:
    returncode: int | None
    seconds: float
    max_rss_kb: int
    """ru_maxrss of the child (os.wait4)."""
    sampled_rss_kb: int
    cpu_seconds: float
    stopped: str | None = None
    dump: str = ""
    stderr_tail: str = ""


def run_child(
    argv: list[str],
    log: Path,
    *,
    timeout_s: float,
    max_rss_kb: int,
    profile: Path | None = None,
) -> ChildRun:
    """Run a child, sampling its RSS; stop it (with a py-spy dump first) past the limits."""
    py_spy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")
    started = time.perf_counter()
    with log.open("ab") as err:
        process = subprocess.Popen(argv, stdout=err, stderr=subprocess.STDOUT, cwd=ROOT)
    recorder: subprocess.Popen[bytes] | None = None
    if profile is not None and py_spy:
        recorder = subprocess.Popen(
            [
                py_spy,
                "record",
                "--pid",
                str(process.pid),
                "--rate",
                "50",
                "--format",
                "speedscope",
                "--output",
                str(profile),
                "--nonblocking",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    sampled = 0
    stopped: str | None = None
    kill_at: float | None = None
    dump = ""
    status = 0
    usage: Any = None
    try:
        while True:
            pid, status, usage = os.wait4(process.pid, os.WNOHANG)
            if pid == process.pid:
                process.returncode = os.waitstatus_to_exitcode(status)
                break
            usage = None
            rss = proc_status_kb(process.pid, "VmRSS")
            sampled = max(sampled, rss)
            elapsed = time.perf_counter() - started
            reason = None
            if elapsed > timeout_s:
                reason = f"stopped after {elapsed / 60:.1f} min (limit {timeout_s / 60:.0f} min)"
            elif rss > max_rss_kb:
                reason = f"stopped at RSS {mib(rss)} (limit {mib(max_rss_kb)})"
            if reason is not None and stopped is None:
                stopped = reason
                print(f"[bench] {reason}: py-spy dump, then stopping", file=sys.stderr)
                if py_spy:
                    done = subprocess.run(
                        [py_spy, "dump", "--pid", str(process.pid)],
                        capture_output=True,
                        text=True,
                        timeout=60,
                        check=False,
                    )
                    dump = done.stdout + done.stderr
                process.send_signal(signal.SIGTERM)
                kill_at = time.perf_counter() + 20
            if kill_at is not None and time.perf_counter() > kill_at:
                process.send_signal(signal.SIGKILL)
                kill_at = None
            time.sleep(0.5)
    finally:
        if process.returncode is None:
            process.kill()
            process.wait()
        if recorder is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                recorder.wait(60)
            if recorder.poll() is None:
                recorder.terminate()
                recorder.wait(10)
    seconds = time.perf_counter() - started
    code = process.returncode
    if usage is not None:
        max_rss, cpu = usage.ru_maxrss, usage.ru_utime + usage.ru_stime
    else:
        max_rss, cpu = 0, float("nan")
    tail = log.read_text(errors="replace")[-4000:] if log.exists() else ""
    return ChildRun(code, seconds, max_rss, sampled, cpu, stopped, dump, tail)


def summarize_speedscope(path: Path, top: int = 15) -> list[tuple[str, float]]:
    """Where the samples were, by the deepest frame in the service's own code
    (src/interaction_recommender, function and line): numpy, implicit and CPython time is
    charged to the line of ours that called it. (line, share of all samples), largest first."""
    data = json.loads(path.read_text())
    frames = data["shared"]["frames"]
    own: dict[str, float] = {}
    total = 0.0
    for profile in data["profiles"]:
        for stack, weight in zip(profile["samples"], profile["weights"], strict=True):
            total += weight
            key = "(outside src/: the bench harness, interpreter start-up)"
            for index in reversed(stack):
                frame = frames[index]
                file = str(frame.get("file", ""))
                if "interaction_recommender/" in file:
                    short = file.split("interaction_recommender/", 1)[1]
                    key = f"{frame['name']} ({short}:{frame.get('line', '?')})"
                    break
            own[key] = own.get(key, 0.0) + weight
    if not total:
        return []
    ranked = sorted(own.items(), key=lambda kv: -kv[1])
    return [(name, weight / total) for name, weight in ranked[:top]]


CALIBRATION_AIM_SHARE = 0.10  # issue 15: choosing λ adds at most 10% to training at 1M events


# --------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------
@dataclass
class SizeReport:
    size: Size
    world: dict[str, Any] | None = None
    gen: ChildRun | None = None
    train: ChildRun | None = None
    result: dict[str, Any] | None = None
    hotspots: list[tuple[str, float]] = field(default_factory=list)


def flatten(tree: dict[str, Any], depth: int = 0, path: str = "") -> list[tuple[int, str, dict]]:
    rows = []
    for name, node in sorted(tree["children"].items(), key=lambda kv: -kv[1]["seconds"]):
        rows.append((depth, name, node))
        rows += flatten(node, depth + 1, f"{path}/{name}")
    return rows


def calibration_line(result: dict[str, Any], total: float) -> str:
    """What choosing λ (the calibrated re-ranking's strength) costs: the candidates are computed
    once for the ranker's tuning, then re-ranked per λ (`_calibration_ndcg`)."""
    seconds = sum(
        node["seconds"] for _, name, node in flatten(result["tree"]) if name == "_calibration_ndcg"
    )
    share = seconds / total if total else 0.0
    verdict = "met" if share <= CALIBRATION_AIM_SHARE else "missed"
    return (
        f"Choosing λ of the calibrated re-ranking (`_calibration_ndcg`, every λ of "
        f"FitConfig.calibration_grid over the tuning users): {seconds:,.1f} s = {share:.1%} of "
        f"`train_model` (aim ≤ {CALIBRATION_AIM_SHARE:.0%} at 1m: **{verdict}**)."
    )


def stage_rows(result: dict[str, Any], total: float, min_share: float = 0.01) -> list[str]:
    """The timer tree as table rows: inclusive seconds, share, calls, own time, peak growth."""
    lines = []
    for depth, name, node in flatten(result["tree"]):
        seconds = node["seconds"]
        if seconds < total * min_share:
            continue
        own = seconds - sum(c["seconds"] for c in node["children"].values())
        growth = node["hwmGrowthKb"]
        indent = "&nbsp;&nbsp;" * 2 * depth + ("└ " if depth else "")
        lines.append(
            f"| {indent}`{name}` | {seconds:,.1f} s | {seconds / total:.0%} | {node['calls']:,} "
            f"| {own:,.1f} s | {('+' + mib(growth)) if growth > 0 else '—'} |"
        )
    return lines


def render(reports: list[SizeReport], args: argparse.Namespace, run: Run) -> str:
    lines = [
        *run.head(START_MARKER, "Training (`bench/training.py`)", ram=True),
        "- Data: `generate_world(seed, users=, movies=, days=)` trimmed to the first N events by "
        "clientTimestamp, written as a world file; a fresh child process then does what "
        "`recommender train --events-file` does (read_world → world_events/world_catalog → "
        f"`train_model`, FitConfig defaults, threads={args.threads}; no artifact written).",
        "- Peak RSS: ru_maxrss of the training child (os.wait4): the whole process, loading the "
        "input included. *After load* = its VmRSS once the EventMessages and catalog were built.",
        "- Stages: timers wrapped around the pipeline's functions in the child (inclusive wall "
        "seconds; *own* = not in a timed callee; *peak +* = how far VmHWM rose during the stage). "
        "Stages under 1% of the total are left out.",
        "",
        "| Size | Events | Users | Movies (touched) | Model | Load input | train_model | Peak RSS "
        "(after load) | CPU | Holdout (home, k=10) |",
        "|---|---:|---:|---:|---|---:|---:|---:|---:|---|",
    ]
    for report in reports:
        world, train, result = report.world or {}, report.train, report.result
        if train is None:
            continue
        events = f"{world.get('events', 0):,}" if world else "?"
        movies = f"{world.get('movies', 0):,} ({world.get('moviesTouched', 0):,})"
        if result is not None:
            model = result["model"]
            params = model["params"] or {}
            parts = []
            if model["ease"]:
                parts.append(f"EASE l2={params.get('easeL2')}")
            if params.get("als"):
                als = params["als"]
                parts.append(
                    f"ALS {als['factors']}f reg={als['regularization']} alpha={als['alpha']}"
                )
            model_text = " + ".join(parts) + f"; {model['positives']:,} positives"
            after_load = next(
                (m["rssKb"] for m in result["marks"] if m["stage"] == "events and catalog ready"),
                0,
            )
            metrics = result["metrics"]
            holdout = (
                f"nDCG {metrics.get('ndcg')}, P {metrics.get('precision')}, R "
                f"{metrics.get('recall')}, MAP {metrics.get('map')}; MostPop nDCG "
                f"{metrics.get('popularityNdcg')} ({metrics.get('users', 0):,} users)"
            )
            load_text = f"{result['loadSeconds']:,.1f} s"
            train_text = f"**{result['trainSeconds']:,.1f} s**"
            users = f"{model['users']:,}"
        else:
            model_text, after_load, holdout = "—", 0, f"not finished: {train.stopped or 'failed'}"
            load_text, train_text = "—", f"> {train.seconds:,.0f} s (stopped)"
            users = f"{world.get('users', 0):,}" if world else "?"
        lines.append(
            f"| {report.size.label} | {events} | {users} | {movies} | {model_text} | {load_text} "
            f"| {train_text} | **{mib(train.max_rss_kb)}** ({mib(after_load)}) "
            f"| {train.cpu_seconds:,.0f} s | {holdout} |"
        )
    for report in reports:
        if report.result is None:
            continue
        result = report.result
        total = result["trainSeconds"]
        world = report.world or {}
        lines += [
            "",
            f"### {report.size.label}: where `train_model`'s {total:,.1f} s go",
            "",
            f"World: `generate_world({args.seed}, users={report.size.users:,}, "
            f"movies={report.size.movies:,}, days={report.size.days})`, "
            f"{world.get('generated', 0):,} events generated in {world.get('generateSeconds')} s, "
            f"the first {world.get('events', 0):,} kept ({world.get('from', '?')[:10]} → "
            f"{world.get('until', '?')[:10]}).",
            "",
            "Progress marks (seconds into train_model, VmRSS / VmHWM): "
            + "; ".join(
                f"{m['stage']} {m['at']} s ({mib(m['rssKb'])} / {mib(m['hwmKb'])})"
                for m in result["marks"]
            )
            + ".",
            "",
            "| Stage | Wall | Share | Calls | Own | Peak + |",
            "|---|---:|---:|---:|---:|---:|",
            *stage_rows(result, total),
            "",
            calibration_line(result, total),
        ]
        if report.hotspots:
            lines += [
                "",
                f"py-spy (50 Hz) over the whole training child ({report.size.label}, input "
                "loading included), samples charged to the deepest line of "
                "src/interaction_recommender on the stack (numpy/implicit time goes to the line "
                "that called it):",
                "",
            ]
            lines += [f"- {share:.1%} `{name}`" for name, share in report.hotspots]
    for report in reports:
        train = report.train
        if train is not None and (train.stopped or report.result is None):
            lines += [
                "",
                f"### {report.size.label}: stopped — {train.stopped or f'exit {train.returncode}'}",
                "",
                "```",
                (train.dump or train.stderr_tail).strip()[-6000:],
                "```",
            ]
    return close_section(lines, [], END_MARKER)


# --------------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------------
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="100k,1m", help=f"Comma-separated: {', '.join(SIZES)}")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--threads", type=int, default=1, help="FitConfig.threads (BLAS, ALS).")
    parser.add_argument("--timeout-min", type=float, default=30.0)
    parser.add_argument("--max-rss-gb", type=float, default=16.0)
    parser.add_argument("--profile", action="store_true", help="py-spy record the training.")
    parser.add_argument("--keep", action="store_true", help="Keep the world files.")
    parser.add_argument("--write", type=Path, help="Markdown file to update (docs/benchmarks.md).")
    # Internal: the children.
    parser.add_argument("--child", choices=("generate", "train"), help=argparse.SUPPRESS)
    parser.add_argument("--size", help=argparse.SUPPRESS)
    parser.add_argument("--world", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    unknown = [s for s in args.sizes.split(",") if s not in SIZES]
    if unknown:
        parser.error(f"unknown sizes {unknown}; known: {list(SIZES)}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child == "generate":
        return child_generate(args)
    if args.child == "train":
        return child_train(args)
    run = Run.of("bench/training.py", argv)
    work = ROOT / "bench" / "results" / run.stamp("training")
    work.mkdir(parents=True, exist_ok=True)
    print(f"[bench] files and logs in {work}", file=sys.stderr)
    reports: list[SizeReport] = []
    timeout_s = args.timeout_min * 60
    max_rss_kb = int(args.max_rss_gb * 1024**2)
    me = [sys.executable, str(Path(__file__).resolve())]
    common = ["--seed", str(args.seed), "--threads", str(args.threads)]

    def child(kind: str, label: str, world: Path, out: Path, profile: Path | None) -> ChildRun:
        """This script again as the `kind` child (generate, train); its log: KIND-LABEL.log."""
        argv = [*me, "--child", kind, "--size", label, *common]
        return run_child(
            [*argv, "--world", str(world), "--out", str(out)],
            work / f"{kind}-{label}.log",
            timeout_s=timeout_s,
            max_rss_kb=max_rss_kb,
            profile=profile,
        )

    for label in args.sizes.split(","):
        size = SIZES[label]
        report = SizeReport(size)
        reports.append(report)
        world_file, world_info = work / f"world-{label}.jsonl", work / f"world-{label}.json"
        print(f"[bench] {label}: generating the world", file=sys.stderr)
        report.gen = child("generate", label, world_file, world_info, None)
        if report.gen.returncode != 0:
            print(report.gen.stderr_tail, file=sys.stderr)
            continue
        report.world = json.loads(world_info.read_text())
        print(f"[bench] {label}: world {report.world}", file=sys.stderr)
        out = work / f"train-{label}.json"
        profile = work / f"train-{label}.speedscope.json" if args.profile else None
        print(f"[bench] {label}: training", file=sys.stderr)
        report.train = child("train", label, world_file, out, profile)
        train = report.train
        print(
            f"[bench] {label}: exit {train.returncode} after {train.seconds:,.1f} s, "
            f"max RSS {mib(train.max_rss_kb)}, CPU {train.cpu_seconds:,.1f} s"
            + (f", {train.stopped}" if train.stopped else ""),
            file=sys.stderr,
        )
        if train.returncode == 0 and out.exists():
            report.result = json.loads(out.read_text())
        else:
            print(train.dump or train.stderr_tail, file=sys.stderr)
        if profile is not None and profile.exists():
            report.hotspots = summarize_speedscope(profile)
        if not args.keep:
            world_file.unlink(missing_ok=True)
    run.done()
    publish(render(reports, args, run), args.write, START_MARKER, END_MARKER)
    return 0 if all(r.result is not None for r in reports) else 1


if __name__ == "__main__":
    raise SystemExit(main())
