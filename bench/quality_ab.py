"""The service's default configuration at two commits on the MovieLens-100K random split: the
paired difference in nDCG@10, per user, with its interval.

    .venv/bin/python bench/quality_ab.py [--base v0.1.0] [--write docs/benchmarks.md]

Each side runs in its own process with its own code (`git archive` of the base commit's src/,
and this checkout): the benchmark's random split (per-item stratified 75/25, seed 42) and its
inner split, the service's real path with the production settings (`service_model`'s headline
row, or before issue 15 its row with diversity on: tuning on the inner split only, the fit, an
artifact written and loaded back, the engine with context `home`, k = 10), scored once on the
test split. The per-user nDCG@10 of both sides are then paired (same users) and the difference
bootstrapped over users (`training.metrics.paired_difference`, 1,000 resamples).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from report import ROOT, Run, close_section, export_tree, markers, publish

from interaction_recommender.training.metrics import bootstrap_interval, paired_difference

START_MARKER, END_MARKER = markers("quality-ab")

# Run by each side's own code: its per-user nDCG@10 on the random split's test part.
_SIDE = """
import inspect
import sys
import numpy as np
from threadpoolctl import threadpool_limits
from interaction_recommender.training.benchmark import K, SplitEvaluator, random_splits
from interaction_recommender.training.movielens import load_movielens_100k
from interaction_recommender.training.movielens_service import service_model

with threadpool_limits(1):
    data = load_movielens_100k()
    outer, inner = random_splits(data.interactions)
    if "diversity" in inspect.signature(service_model).parameters:
        # Before issue 15: one row per diversity setting; the production default had it on.
        (fitted,) = service_model(diversity=(True,))(outer.train, data.items, inner)
    else:
        # Since issue 15 the first row is `recommender serve`'s default configuration.
        fitted = service_model()(outer.train, data.items, inner)[0]
    metrics = SplitEvaluator(outer, K, once=True).evaluate("service", fitted.recommend)
np.savez(sys.argv[1], users=metrics.users, ndcg=metrics.ndcg)
"""


def run_side(tree: Path, out: Path) -> tuple[np.ndarray, np.ndarray]:
    env = {**os.environ, "PYTHONPATH": str(tree / "src")}
    subprocess.run(
        [sys.executable, "-c", _SIDE, str(out)], cwd=tree, env=env, check=True, timeout=7200
    )
    with np.load(out) as saved:
        return saved["users"], saved["ndcg"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", default="v0.1.0")
    parser.add_argument("--write", type=Path)
    args = parser.parse_args(argv)
    run = Run.of("bench/quality_ab.py", argv)
    with tempfile.TemporaryDirectory() as folder:
        base_tree = export_tree(args.base, Path(folder), ("src",))
        print(f"[bench] base {args.base}", file=sys.stderr)
        base_users, base = run_side(base_tree, Path(folder) / "base.npz")
        print("[bench] head", file=sys.stderr)
        head_users, head = run_side(ROOT, Path(folder) / "head.npz")
    if not np.array_equal(base_users, head_users):
        raise SystemExit("the two sides scored different users")
    run.done()
    difference = paired_difference(head, base)
    lines = [
        *run.head(START_MARKER, "Quality at two commits (`bench/quality_ab.py`)"),
        f"- MovieLens-100K, random split, test users: {len(head_users):,}; the production "
        f"configuration at `{args.base}` (base) and in this checkout (head), each through its "
        "own code; nDCG@10 with 95% user-bootstrap intervals.",
        "",
        "| Side | nDCG@10 |",
        "|---|---|",
        f"| base `{args.base}` | {_interval(bootstrap_interval(base))} |",
        f"| head | {_interval(bootstrap_interval(head))} |",
        f"| head - base (paired) | {_interval(difference, signed=True)} |",
    ]
    notes = [
        f"Aim: head - base >= -0.005: {'met' if difference.estimate >= -0.005 else 'missed'} "
        f"(estimate {difference.estimate:+.4f})."
    ]
    publish(close_section(lines, notes, END_MARKER), args.write, START_MARKER, END_MARKER)
    return 0


def _interval(value: object, *, signed: bool = False) -> str:
    estimate, low, high = (getattr(value, a) for a in ("estimate", "low", "high"))
    sign = "+" if signed else ""
    return f"{estimate:{sign}.4f} [{low:{sign}.4f}, {high:{sign}.4f}]"


if __name__ == "__main__":
    sys.exit(main())
