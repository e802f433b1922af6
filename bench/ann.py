"""Choosing the ALS retrieval index: exact top-N against approximate nearest-neighbour libraries,
at 10,000 and 100,000 movies, on the query vectors the engine really makes.

    .venv/bin/python bench/ann.py [--models 10000:fit,100000:fit,100000:synthetic]
                                  [--users 300] [--top 200] [--write docs/benchmarks.md]

Per model (bench/engine.py's worlds and models: `fit` trains ALS on the demo world, `synthetic`
draws N(0, 0.1) factors, the hard case for a graph index):
- queries: the measured users' ALS vectors, folded in from their histories exactly as the engine
  does (`model.engine._fold_in`);
- exact: `item_factors @ u`, then `argpartition` for the top N (what the engine does today);
- each index: built from the item factors (build seconds, serialised bytes), then one query at a
  time, one thread (p50/p99 µs), and its recall: the share of the exact top N it returns, and the
  share of the exact top 10 inside its top N (what the two-stage engine needs).
Everything runs inside threadpoolctl's threadpool_limits(1), as in a serving process.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt
from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

sys.path.insert(0, str(Path(__file__).resolve().parent))
from engine import fit, make_world, parse_models, synthetic
from report import Run, close_section, markers, percentile, publish

from interaction_recommender.model import engine as E
from interaction_recommender.model.arrays import RecommenderModel
from interaction_recommender.model.catalog_view import build_catalog_view

START_MARKER, END_MARKER = markers("ann")
Floats = npt.NDArray[np.float32]
Ints = npt.NDArray[np.int64]


@dataclass
class Result:
    size: int
    kind: str
    method: str
    build_s: float
    nbytes: int
    query_us: list[float] = field(default_factory=list)
    recall_n: list[float] = field(default_factory=list)
    recall_10: list[float] = field(default_factory=list)


Search = Callable[[Floats, int], Ints]


def exact(factors: Floats) -> tuple[Search, float, int]:
    def search(query: Floats, top: int) -> Ints:
        scores = factors @ query
        found: Ints = np.argpartition(-scores, top - 1)[:top]
        return found

    return search, 0.0, 0


def usearch_index(factors: Floats, dtype: str, expansion: int) -> tuple[Search, float, int]:
    from usearch.index import Index

    started = time.perf_counter()
    index = Index(ndim=factors.shape[1], metric="ip", dtype=dtype, connectivity=16)
    index.add(np.arange(len(factors)), factors, threads=1)
    index.expansion_search = expansion
    build = time.perf_counter() - started
    nbytes = len(index.save())

    def search(query: Floats, top: int) -> Ints:
        return np.asarray(index.search(query, top, threads=1).keys, dtype=np.int64)

    return search, build, nbytes


def faiss_hnsw(factors: Floats, ef_search: int) -> tuple[Search, float, int]:
    import faiss

    faiss.omp_set_num_threads(1)
    started = time.perf_counter()
    index = faiss.IndexHNSWFlat(factors.shape[1], 32, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = 128
    index.add(factors)
    index.hnsw.efSearch = ef_search
    build = time.perf_counter() - started
    nbytes = int(faiss.serialize_index(index).nbytes)

    def search(query: Floats, top: int) -> Ints:
        _, found = index.search(query[None, :], top)
        return np.asarray(found[0], dtype=np.int64)

    return search, build, nbytes


def queries(model: RecommenderModel, world: object) -> list[Floats]:
    view = build_catalog_view(model, world.catalog, catalog_version=1)  # type: ignore[attr-defined]
    vectors = []
    for features in world.users:  # type: ignore[attr-defined]
        state = E._UserState.of(features, model, view)
        if state.history.size:
            vectors.append(E._fold_in(model, state.history, state.weights))
    return vectors


def measure(model: RecommenderModel, world: object, size: int, kind: str, top: int) -> list[Result]:
    assert model.item_factors is not None
    factors = np.ascontiguousarray(model.item_factors)
    users = queries(model, world)
    methods: dict[str, Callable[[], tuple[Search, float, int]]] = {
        "exact (numpy)": lambda: exact(factors),
        "usearch f32 ef=64": lambda: usearch_index(factors, "f32", 64),
        "usearch f32 ef=256": lambda: usearch_index(factors, "f32", 256),
        "usearch i8 ef=256": lambda: usearch_index(factors, "i8", 256),
        "faiss HNSW32 ef=64": lambda: faiss_hnsw(factors, 64),
        "faiss HNSW32 ef=256": lambda: faiss_hnsw(factors, 256),
    }
    truth = [np.argsort(-(factors @ u), kind="stable") for u in users]
    results = []
    for name, build in methods.items():
        search, build_s, nbytes = build()
        result = Result(size, kind, name, build_s, nbytes)
        for u in users[:20]:  # warm-up
            search(u, top)
        for u, order in zip(users, truth, strict=True):
            t0 = time.perf_counter_ns()
            found = search(u, top)
            result.query_us.append((time.perf_counter_ns() - t0) / 1000)
            got = set(found.tolist())
            result.recall_n.append(len(got & set(order[:top].tolist())) / top)
            result.recall_10.append(len(got & set(order[:10].tolist())) / 10)
        results.append(result)
        print(
            f"[bench] {size:,} {kind} {name}: p50 {percentile(sorted(result.query_us), 50):,.0f}"
            f" µs, recall@{top} {statistics.fmean(result.recall_n):.3f}",
            file=sys.stderr,
        )
    return results


def render(results: list[Result], args: argparse.Namespace, run: Run) -> str:
    lines = [
        *run.head(START_MARKER, "ALS retrieval index (`bench/ann.py`)"),
        f"- Queries: {args.users} users' ALS vectors per model (folded in from their histories), "
        f"one at a time, one thread; top N = {args.top}. Recall@N: share of the exact top N "
        "returned; top-10 in N: share of the exact top 10 inside the returned N.",
        "",
        "| Movies | Model | Method | Build | Size | p50 | p99 | Recall@N | Top-10 in N |",
        "|---:|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        ordered = sorted(r.query_us)
        lines.append(
            f"| {r.size:,} | {r.kind} | {r.method} | {r.build_s:,.1f} s | "
            f"{r.nbytes / 1e6:,.1f} MB | {percentile(ordered, 50):,.0f} µs | "
            f"{percentile(ordered, 99):,.0f} µs | {statistics.fmean(r.recall_n):.3f} | "
            f"{statistics.fmean(r.recall_10):.3f} |"
        )
    return close_section(lines, [], END_MARKER)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default="10000:fit,100000:fit,100000:synthetic")
    parser.add_argument("--users", type=int, default=300)
    parser.add_argument("--world-users", type=int, default=4000, help="As bench/engine.py.")
    parser.add_argument("--top", type=int, default=200)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--write", type=Path)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    run = Run.of("bench/ann.py", argv)
    results: list[Result] = []
    with threadpool_limits(1):
        for size, kind in parse_models(args.models):
            world = make_world(size, args.world_users, args.users, args.seed)
            model = fit(world)[0] if kind == "fit" else synthetic(world, args.seed)[0]
            results += measure(model, world, size, kind, args.top)
    run.done()
    publish(render(results, args, run), args.write, START_MARKER, END_MARKER)
    return 0


if __name__ == "__main__":
    sys.exit(main())
