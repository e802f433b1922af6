"""The `recommender` command line."""

from __future__ import annotations

import asyncio
import json
import os
import signal
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import structlog
import typer

from interaction_recommender.cli.models import model_app
from interaction_recommender.logs import configure_logging
from interaction_recommender.settings import Settings
from interaction_recommender.wire import dumps

__all__ = ["main"]

log = structlog.get_logger(__name__)

app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__)


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address (env HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (env PORT).")] = None,
) -> None:
    """Run the HTTP service (embedded mode when DATABASE_URL, REDIS_URL, ENABLE_KAFKA are unset)."""
    import uvicorn

    from interaction_recommender.app import create_app

    settings = Settings()
    configure_logging(settings.log_level, json=settings.log_json)
    _single_threaded_math()
    uvicorn.run(
        create_app(settings),
        host=host or settings.host,
        port=port or settings.port,
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_config=None,
        timeout_graceful_shutdown=int(settings.graceful_shutdown_s),
        server_header=False,
    )


@app.command()
def migrate() -> None:
    """Apply database migrations (safe when several replicas run it at once); without
    MODEL_SIGNING_KEYS, generate the shared model signing key once and store it."""
    from interaction_recommender.model.keys import ensure_stored_key
    from interaction_recommender.storage import Database
    from interaction_recommender.storage import migrate as run_migrations

    settings = Settings()
    configure_logging(settings.log_level, json=settings.log_json)

    async def _run() -> None:
        database = Database(settings)
        try:
            await run_migrations(database)
            await ensure_stored_key(settings, database)
        finally:
            await database.dispose()

    asyncio.run(_run())
    typer.echo("database schema is at head")


@app.command()
def worker() -> None:
    """Run the consumers (features, placeholders, feedback attribution) and the outbox relay
    without HTTP, so that extraction scales out by Kafka partitions apart from the API (needs
    ENABLE_KAFKA=true); with TRAIN_INTERVAL_S > 0 it also retrains on that schedule."""
    from contextlib import AsyncExitStack

    from interaction_recommender.runtime import build_runtime
    from interaction_recommender.training.scheduled import ScheduledTraining

    settings = Settings()
    configure_logging(settings.log_level, json=settings.log_json)
    if not settings.enable_kafka:
        typer.echo(
            "the worker needs Kafka (ENABLE_KAFKA=true): the in-process bus lives inside `serve`",
            err=True,
        )
        raise typer.Exit(2)
    _single_threaded_math()

    async def _run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        async with AsyncExitStack() as stack:
            runtime = await build_runtime(settings, stack, run_consumers=True, serving=False)
            if settings.train_interval_s > 0:
                training = ScheduledTraining(
                    settings, runtime.database, interval_s=settings.train_interval_s
                )
                training.start()
                stack.push_async_callback(training.stop)
            log.info("worker_started", train_interval_s=settings.train_interval_s)
            await stop.wait()
            log.info("worker_stopping")

    asyncio.run(_run())


@app.command()
def train(
    events_file: Annotated[
        Path | None,
        typer.Option(help="A world from `demo generate` instead of the database's events."),
    ] = None,
    name: Annotated[
        str, typer.Option(help="The model name this training makes a new version of.")
    ] = "champion",
    lock_wait_s: Annotated[
        float,
        typer.Option(help="How long to wait for another trainer (the worker's) to finish."),
    ] = 600.0,
) -> None:
    """Train on the stored events (or a world file), evaluate on a time-ordered holdout, and
    store the signed model as the new version of --name in the model store (every serving
    process switches within MODEL_POLL_S). Holds the trainer lock, as the worker's scheduled
    training does: exit code 75 when another trainer kept it past --lock-wait-s."""
    from interaction_recommender.cli.training import stored_input, train_into_store, world_input

    settings = Settings()
    configure_logging(settings.log_level, json=settings.log_json)
    load = world_input(events_file) if events_file is not None else stored_input(settings)
    asyncio.run(train_into_store(settings, load, name=name, lock_wait_s=lock_wait_s))


@app.command("create-sample-model")
def create_sample_model(
    seed: Annotated[int, typer.Option(help="Seed of the demo world.")] = 7,
) -> None:
    """Train a real model on the synthetic demo world and write it, signed, to MODEL_PATH
    (every serving process imports it as the champion)."""
    from interaction_recommender.cli.training import train_to_model_path
    from interaction_recommender.demo.events import world_catalog, world_events
    from interaction_recommender.demo.world import generate_world
    from interaction_recommender.training.job import TrainingInput

    settings = Settings()
    configure_logging(settings.log_level, json=settings.log_json)
    world = generate_world(seed)
    data = TrainingInput(world_events(world), world_catalog(world))
    asyncio.run(train_to_model_path(settings, data))


class Dataset(StrEnum):
    ML_100K = "ml-100k"
    SYNTHETIC = "synthetic"


@app.command()
def evaluate(
    dataset: Annotated[
        Dataset,
        typer.Option(
            help="ml-100k: MovieLens 100K, the fixed protocol; synthetic: a small generated "
            "data set that runs the same path in seconds (a smoke test, not quality evidence)."
        ),
    ] = Dataset.ML_100K,
    write: Annotated[Path | None, typer.Option(help="Also write the table into this file.")] = None,
    seeds: Annotated[
        str | None,
        typer.Option(
            help="Comma-separated random-split seeds to compare with EASE (default: "
            "the five fixed in training/benchmark.py)."
        ),
    ] = None,
) -> None:
    """The offline quality benchmark: the service's model through its real path against tuned
    baselines and published results (downloads MovieLens at run time; never committed)."""
    from interaction_recommender.model.engine import EngineSettings
    from interaction_recommender.model.labels import LabelWeights
    from interaction_recommender.training.benchmark import SEEDS, run_benchmark
    from interaction_recommender.training.fit import FitConfig
    from interaction_recommender.training.movielens_service import service_model
    from interaction_recommender.training.synthetic_data import synthetic_dataset

    settings = Settings()
    configure_logging(settings.log_level, json=settings.log_json)
    # The headline row is what `recommender train` fits and `recommender serve` serves.
    report = run_benchmark(
        service_model(
            engine=EngineSettings.from_settings(settings),
            labels=LabelWeights.from_settings(settings),
            config=FitConfig.from_settings(settings),
        ),
        dataset=synthetic_dataset() if dataset is Dataset.SYNTHETIC else None,
        compare=SEEDS if seeds is None else [int(x) for x in seeds.split(",")],
    )
    command = ["recommender", "evaluate", "--dataset", dataset.value]
    command += ["--seeds", seeds] if seeds is not None else []
    command += ["--write", str(write)] if write is not None else []
    table = report.to_markdown(_provenance(command))
    typer.echo(table)
    if write is not None:
        _replace_section(write, "quality", table)


def _provenance(command: list[str]) -> list[str]:
    """Date, commit, machine and command of this run, for a benchmark block."""
    import platform
    import shlex
    import shutil
    import subprocess

    git = shutil.which("git")
    try:
        if git is None:
            raise OSError("git is not installed")
        commit = subprocess.run(  # noqa: S603 (git, fixed arguments)
            [git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(  # noqa: S603
            [git, "status", "--porcelain", "--", "src"], capture_output=True, text=True
        ).stdout.strip()
        commit += " (+ uncommitted changes in src/)" if dirty else ""
    except (OSError, subprocess.CalledProcessError):
        commit = "unknown (not a git checkout)"
    cpu = (
        next(
            (
                line.split(":", 1)[1].strip()
                for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")
            ),
            platform.processor() or "unknown CPU",
        )
        if Path("/proc/cpuinfo").exists()
        else platform.processor() or "unknown CPU"
    )
    return [
        f"Date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        f"Commit: {commit}",
        f"Machine: {os.cpu_count()} CPUs, {cpu}; Python {platform.python_version()}",
        f"Command: `{shlex.join(command)}`",
    ]


def _replace_section(path: Path, name: str, body: str) -> None:
    """Put ``body`` between the bench markers named ``name`` in ``path`` (appended if absent)."""
    start, end = f"<!-- bench:{name}:start -->", f"<!-- bench:{name}:end -->"
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    block = f"{start}\n{body.rstrip()}\n{end}"
    if start in text and end in text:
        text = text[: text.index(start)] + block + text[text.index(end) + len(end) :]
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    path.write_text(text)


catalog_app = typer.Typer(no_args_is_help=True, help="The movie catalog.")
demo_app = typer.Typer(no_args_is_help=True, help="The synthetic demo world.")
dlq_app = typer.Typer(no_args_is_help=True, help="Dead letters of the consumers.")
app.add_typer(catalog_app, name="catalog")
app.add_typer(demo_app, name="demo")
app.add_typer(dlq_app, name="dlq")
app.add_typer(model_app, name="model")


@dlq_app.command("list")
def dlq_list(
    all_letters: Annotated[bool, typer.Option("--all", help="Include replayed ones.")] = False,
    limit: Annotated[int, typer.Option(min=1, max=10_000)] = 100,
) -> None:
    """Print dead letters (JSON lines), oldest first, then the outbox rows set aside."""
    from interaction_recommender.deadletter.messages import (
        dead_letter_document,
        set_aside_document,
    )
    from interaction_recommender.deadletter.repository import DeadLetterRepository
    from interaction_recommender.outbox.repository import OutboxRepository

    async def _run(conn: Any) -> None:
        rows = await DeadLetterRepository(conn).recent(pending_only=not all_letters, limit=limit)
        for row in rows:
            typer.echo(dumps(dead_letter_document(row)).decode())
        for aside in await OutboxRepository(conn).set_aside_rows(limit):
            typer.echo(dumps({"setAside": set_aside_document(aside)}).decode())

    _in_transaction(_run)


@dlq_app.command("replay")
def dlq_replay(
    ids: Annotated[list[int] | None, typer.Option("--id", help="A dead letter to replay.")] = None,
    all_letters: Annotated[bool, typer.Option("--all", help="Every pending one.")] = False,
) -> None:
    """Re-inject dead letters into their topic (each is applied exactly once)."""
    from interaction_recommender.deadletter.service import replay

    if bool(ids) == all_letters:
        typer.echo("give --id (one or more) or --all", err=True)
        raise typer.Exit(2)

    async def _run(conn: Any) -> None:
        replayed = await replay(conn, None if all_letters else ids)
        typer.echo(json.dumps({"replayed": replayed}))

    _in_transaction(_run)


def _in_transaction(work: Callable[[Any], Awaitable[None]]) -> None:
    from interaction_recommender.storage import Database

    settings = Settings()
    configure_logging(settings.log_level, json=settings.log_json)

    async def _run() -> None:
        database = Database(settings)
        try:
            async with database.transaction() as conn:
                await work(conn)
        finally:
            await database.dispose()

    asyncio.run(_run())


@catalog_app.command("sync")
def catalog_sync() -> None:
    """Read the movie service's whole catalog (MOVIE_SERVICE_URL) and apply it. Only a complete
    walk changes anything; movies it no longer lists are then hidden."""
    from interaction_recommender.bus import Topics
    from interaction_recommender.catalog.movie_service import CatalogSyncIncomplete
    from interaction_recommender.catalog.sync import sync_catalog
    from interaction_recommender.storage import Database

    settings = Settings()
    configure_logging(settings.log_level, json=settings.log_json)

    async def _run() -> None:
        database = Database(settings)
        try:
            topic = Topics.with_prefix(settings.kafka_topic_prefix).movie_catalog
            report = await sync_catalog(database, settings, topic=topic)
        finally:
            await database.dispose()
        typer.echo(json.dumps(asdict(report)))

    try:
        asyncio.run(_run())
    except CatalogSyncIncomplete as exc:
        typer.echo(f"sync incomplete, nothing changed: {exc}", err=True)
        raise typer.Exit(1) from None
    except ValueError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None


@demo_app.command("generate")
def demo_generate(
    out: Annotated[Path, typer.Option(help="JSON Lines file to write.")],
    seed: Annotated[int, typer.Option(help="Same seed, same world.")] = 7,
    movies: Annotated[int, typer.Option(min=1)] = 400,
    users: Annotated[int, typer.Option(min=1)] = 3000,
    days: Annotated[int, typer.Option(min=1)] = 90,
    end: Annotated[
        datetime | None, typer.Option(help="Last day of the world (UTC); default: a fixed date.")
    ] = None,
) -> None:
    """Write a synthetic world (movies, users with planted tastes, their events)."""
    from interaction_recommender.demo.world import DEFAULT_END, generate_world, write_world

    world_end = DEFAULT_END if end is None else end.replace(tzinfo=UTC)
    world = generate_world(seed, movies=movies, users=users, days=days, end=world_end)
    write_world(world, out)
    typer.echo(
        json.dumps(
            {"movies": len(world.movies), "users": len(world.users), "events": len(world.events)}
        )
    )


@demo_app.command("load")
def demo_load(path: Annotated[Path, typer.Argument(help="A file from `demo generate`.")]) -> None:
    """Load a world into the configured database through the ingest path (events + outbox)."""
    from interaction_recommender.bus import Topics
    from interaction_recommender.demo.loader import load_world
    from interaction_recommender.demo.world import read_world
    from interaction_recommender.events.factory import build_event_store
    from interaction_recommender.storage import Database
    from interaction_recommender.storage import migrate as run_migrations

    settings = Settings()
    configure_logging(settings.log_level, json=settings.log_json)
    world = read_world(path)

    async def _run() -> tuple[int, int]:
        database = Database(settings)
        try:
            if settings.migrate_on_start:
                await run_migrations(database)
            topics = Topics.with_prefix(settings.kafka_topic_prefix)
            return await load_world(
                world,
                database=database,
                events=build_event_store(database, settings),
                event_topic=topics.interaction_events,
                catalog_topic=topics.movie_catalog,
            )
        finally:
            await database.dispose()

    movies_stored, events_stored = asyncio.run(_run())
    typer.echo(json.dumps({"movies": movies_stored, "events": events_stored}))


def _single_threaded_math() -> None:
    # BLAS threads fight the event loop for 2 cores (docs/benchmarks.md): serving pins them to
    # one. The environment covers libraries loaded later; numpy/scipy are already loaded by the
    # imports above, and only threadpoolctl changes their pools now.
    from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

    for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(name, "1")
    threadpool_limits(limits=1)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
