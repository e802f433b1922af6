"""The engine benchmark at two commits, alternated in one sitting: did a change move the engine?

    .venv/bin/python bench/engine_ab.py [--base v0.1.0] [--runs 3] [--write docs/benchmarks.md]
                                        [-- <bench/engine.py arguments>]

`git archive` exports the base commit's `src/` and `bench/` into a temporary folder; then
bench/engine.py runs `--runs` times from the base and `--runs` times from this checkout,
alternating (base, head, base, head, ...) so that a change in the machine's load hits both sides
alike. Each run prints its markdown table; per row (catalog size, model, context) the report
gives the median of the runs' p50 and p99 on each side, the runs' spread (min..max), and the
head/base ratio of the medians. A row passes when the medians are within 10% of each other, or
when the head's median lies within the base's spread.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from report import ROOT, Run, close_section, export_tree, markers, publish

START_MARKER, END_MARKER = markers("engine-ab")
_ROW = re.compile(
    r"^\| (?P<size>[\d,]+) \| (?P<model>\w+) \| (?P<context>\w+) \| [\d,]+ \| [\d,]+ "
    r"(?:\| [\d.]+ )?\| (?P<p50>[\d,]+) µs \| \*\*(?P<p99>[\d,]+) µs\*\* \|"
)
_TOLERANCE = 0.10


@dataclass
class Side:
    p50: list[float] = field(default_factory=list)
    p99: list[float] = field(default_factory=list)


def parse(table: str) -> dict[tuple[str, str, str], tuple[float, float]]:
    """(size, model, context) -> (p50 µs, p99 µs) of one bench/engine.py report."""
    rows = {}
    for line in table.splitlines():
        match = _ROW.match(line)
        if match:
            key = (match["size"], match["model"], match["context"])
            rows[key] = (float(match["p50"].replace(",", "")), float(match["p99"].replace(",", "")))
    return rows


def run_engine(tree: Path, engine_args: list[str]) -> str:
    env = {**os.environ, "PYTHONPATH": str(tree / "src")}
    result = subprocess.run(
        [sys.executable, str(tree / "bench" / "engine.py"), *engine_args],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout


def spread(values: list[float]) -> str:
    return f"{min(values):,.0f}..{max(values):,.0f}"


def judge(base: list[float], head: list[float]) -> tuple[float, bool]:
    ratio = statistics.median(head) / statistics.median(base)
    within_spread = min(base) <= statistics.median(head) <= max(base)
    return ratio, abs(ratio - 1.0) <= _TOLERANCE or within_spread


def render(
    results: dict[str, dict[tuple[str, str, str], Side]], args: argparse.Namespace, run: Run
) -> str:
    lines = [
        *run.head(START_MARKER, "Engine at two commits, alternated (`bench/engine_ab.py`)"),
        f"- Base: `{args.base}`; head: this checkout. {args.runs} runs each, alternated "
        "(base first); bench/engine.py arguments: "
        f"`{' '.join(args.engine_args) or '(defaults)'}`.",
        "- Per row: the median over the runs of each side's p50 and p99 (µs), the runs' spread "
        "(min..max), the head/base ratio of the medians. Pass: medians within 10%, or the "
        "head's median inside the base's spread.",
        "",
        "| Movies | Model | Context | p50 base | p50 head | p50 ratio | p99 base | p99 head "
        "| p99 ratio | pass |",
        "|---:|---|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    failures = 0
    for key in results["base"]:
        base, head = results["base"][key], results["head"].get(key)
        if head is None:
            continue
        ratio50, ok50 = judge(base.p50, head.p50)
        ratio99, ok99 = judge(base.p99, head.p99)
        failures += not (ok50 and ok99)
        lines.append(
            f"| {key[0]} | {key[1]} | {key[2]} "
            f"| {statistics.median(base.p50):,.0f} ({spread(base.p50)}) "
            f"| {statistics.median(head.p50):,.0f} ({spread(head.p50)}) | {ratio50:.2f} "
            f"| {statistics.median(base.p99):,.0f} ({spread(base.p99)}) "
            f"| {statistics.median(head.p99):,.0f} ({spread(head.p99)}) | {ratio99:.2f} "
            f"| {'yes' if ok50 and ok99 else '**no**'} |"
        )
    rows = len(results["base"])
    notes = [f"{rows - failures} of {rows} rows pass."]
    return close_section(lines, notes, END_MARKER)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", default="v0.1.0", help="The commit (or tag) to compare with.")
    parser.add_argument("--runs", type=int, default=3, help="Runs per side (alternated).")
    parser.add_argument("--write", type=Path, help="Write the section into this file.")
    parser.add_argument("engine_args", nargs="*", help="Passed to bench/engine.py (after --).")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    run = Run.of("bench/engine_ab.py", argv)
    results: dict[str, dict[tuple[str, str, str], Side]] = {"base": {}, "head": {}}
    with tempfile.TemporaryDirectory() as folder:
        trees = {"base": export_tree(args.base, Path(folder), ("src", "bench")), "head": ROOT}
        for index in range(args.runs):
            for side in ("base", "head"):
                print(f"[bench] run {index + 1}/{args.runs}: {side}", file=sys.stderr)
                for key, (p50, p99) in parse(run_engine(trees[side], args.engine_args)).items():
                    entry = results[side].setdefault(key, Side())
                    entry.p50.append(p50)
                    entry.p99.append(p99)
    run.done()
    publish(render(results, args, run), args.write, START_MARKER, END_MARKER)
    return 0


if __name__ == "__main__":
    sys.exit(main())
