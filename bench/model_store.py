"""The model store: how long a serving process takes to get a new version, and a trainer to
store one, on the database every host already has (model/store.py), against the same bytes on a
local disk in the same run.

    .venv/bin/python bench/model_store.py [--sizes 1000,10000,100000] [--runs 5]
                                          [--write docs/benchmarks.md]

Per catalog size: a model with training's array shapes (bench/engine.py's `synthetic`: ALS 64
factors, 50 neighbours per item, dense EASE up to 5,000 items), written as a signed bundle
(model/bundle.py). Then, --runs times each (a new version name each time):
- store: `ModelStore.add` (the whole bundle verified, then its chunks written in one
  transaction and the champion moved), on Postgres (a fresh schema, dropped afterwards) and on
  SQLite (the embedded mode's database, in a temporary folder);
- fetch: `ModelStore.bundle` (the chunks read back, one statement each);
- verify: `read_bundle` (signature, member hashes, arrays with allow_pickle=False) — what a
  process does with the bytes wherever they come from;
- baseline: the same bytes written to a local file (write, fsync, rename: `save_bundle_file`)
  and read back (page cache warm), in the same process.
Reports p50 and max per operation, MB/s and the store/file ratio of the medians.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from engine import make_world, synthetic
from ingest import pg
from report import Run, add_store_args, close_section, markers, publish

from interaction_recommender.model.bundle import read_bundle, save_bundle_file, write_bundle
from interaction_recommender.model.signing import SigningKeys, generate_key
from interaction_recommender.model.store import ModelStore
from interaction_recommender.settings import Settings
from interaction_recommender.storage import Database, migrate

START_MARKER, END_MARKER = markers("model-store")
KEYS = SigningKeys.parse(generate_key())


async def _timed(runs: int, work: Callable[[int], Awaitable[object]]) -> list[float]:
    seconds = []
    for run in range(runs):
        started = time.perf_counter()
        await work(run)
        seconds.append(time.perf_counter() - started)
    return seconds


def _cell(samples: list[float], size_mb: float) -> str:
    p50 = statistics.median(samples)
    return f"{p50 * 1000:,.0f} ms (max {max(samples) * 1000:,.0f}; {size_mb / p50:,.0f} MB/s)"


async def _measure_database(
    settings: Settings, bundles: list[bytes], runs: int
) -> dict[str, list[float]]:
    database = Database(settings)
    try:
        await migrate(database)
        store = ModelStore(database, KEYS)
        stored = await _timed(runs, lambda run: store.add(bundles[run], source="train"))
        versions = [v.version for v in await store.versions(runs)]
        fetched = await _timed(runs, lambda run: store.bundle(versions[run % len(versions)]))
        return {"store": stored, "fetch": fetched}
    finally:
        await database.dispose()


async def _measure_files(folder: Path, bundle: bytes, runs: int) -> dict[str, list[float]]:
    path = folder / "recommender.pkl"

    async def write(_: int) -> None:
        save_bundle_file(bundle, path)

    async def read(_: int) -> bytes:
        return path.read_bytes()

    return {"store": await _timed(runs, write), "fetch": await _timed(runs, read)}


async def measure_size(size: int, args: argparse.Namespace) -> list[str]:
    print(f"[bench] {size:,} movies: building the model", file=sys.stderr)
    world = make_world(size, world_users=2000, measured=100, seed=7)
    model, what, _ = synthetic(world, seed=7)
    started = time.perf_counter()
    bundles = [write_bundle(replace(model, version=f"v{run}"), KEYS) for run in range(args.runs)]
    write_seconds = (time.perf_counter() - started) / args.runs
    size_mb = len(bundles[0]) / 1e6
    verify = await _timed(args.runs, lambda run: asyncio.to_thread(read_bundle, bundles[run], KEYS))
    schema = f"bench_store_{uuid.uuid4().hex[:8]}"
    await asyncio.to_thread(pg, args.database_url, f"CREATE SCHEMA {schema}")
    try:
        print(f"[bench] {size:,} movies: Postgres", file=sys.stderr)
        postgres = await _measure_database(
            Settings(database_url=args.database_url, database_schema=schema), bundles, args.runs
        )
    finally:
        await asyncio.to_thread(pg, args.database_url, f"DROP SCHEMA {schema} CASCADE")
    with tempfile.TemporaryDirectory() as folder:
        print(f"[bench] {size:,} movies: SQLite and files", file=sys.stderr)
        sqlite = await _measure_database(
            Settings(data_dir=Path(folder) / "var", demo_data=False), bundles, args.runs
        )
        files = await _measure_files(Path(folder), bundles[0], args.runs)
    rows = []
    for operation in ("store", "fetch"):
        file_p50 = statistics.median(files[operation])
        rows.append(
            f"| {size:,} | {size_mb:,.1f} MB | {operation} | {_cell(postgres[operation], size_mb)} "
            f"| {statistics.median(postgres[operation]) / file_p50:,.1f} "
            f"| {_cell(sqlite[operation], size_mb)} | {_cell(files[operation], size_mb)} |"
        )
    rows.append(
        f"| {size:,} | {size_mb:,.1f} MB | verify (any source) | {_cell(verify, size_mb)} | — "
        f"| — | — |"
    )
    print(f"[bench] {size:,}: {what}; write_bundle {write_seconds:.2f} s", file=sys.stderr)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--write", type=Path)
    add_store_args(parser)
    args = parser.parse_args(argv)
    run = Run.of("bench/model_store.py", argv)
    rows: list[str] = []
    for size in (int(s) for s in args.sizes.split(",")):
        rows += asyncio.run(measure_size(size, args))
    run.done()
    lines = [
        *run.head(START_MARKER, "Model store (`bench/model_store.py`)"),
        "- Models: bench/engine.py's `synthetic` arrays (ALS 64 factors, 50 neighbours per item, "
        "dense EASE up to 5,000 items) as signed bundles; a new version per run. Postgres: a "
        "fresh schema on the local server; SQLite: the embedded mode's file in a temporary "
        "folder; file: `save_bundle_file` (write, fsync, rename) and a read of the same bytes.",
        f"- {args.runs} runs per cell: p50 (max; MB/s at p50). *store* = `ModelStore.add` "
        "(verification of the whole bundle included, then the chunks in one transaction); "
        "*fetch* = `ModelStore.bundle`; *verify* = `read_bundle` alone.",
        "",
        "| Movies | Bundle | Operation | Postgres | Postgres / file | SQLite | Local file |",
        "|---:|---:|---|---:|---:|---:|---:|",
        *rows,
    ]
    publish(close_section(lines, [], END_MARKER), args.write, START_MARKER, END_MARKER)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
