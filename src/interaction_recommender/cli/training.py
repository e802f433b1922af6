"""Training from the command line: under the trainer lock (storage/locks.py), from the stored
events or a world file, the model signed and stored as the new version of its name; or, for
`create-sample-model`, a signed bundle written to MODEL_PATH (the seed's import path)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

import typer

from interaction_recommender.settings import Settings
from interaction_recommender.storage.database import Database
from interaction_recommender.training.job import TrainingInput
from interaction_recommender.training.pipeline import TrainResult
from interaction_recommender.wire import dumps

__all__ = [
    "open_database",
    "stored_input",
    "train_into_store",
    "train_to_model_path",
    "world_input",
]

LoadInput = Callable[[Database], Awaitable[TrainingInput]]


async def open_database(settings: Settings) -> Database:
    """The database, migrated first where `serve` would migrate it (the embedded mode, or
    AUTO_MIGRATE=true): a command on a fresh DATA_DIR works like the server."""
    from interaction_recommender.model.keys import ensure_stored_key
    from interaction_recommender.storage import migrate

    database = Database(settings)
    if settings.migrate_on_start:
        await migrate(database)
        await ensure_stored_key(settings, database)
    return database


async def train_into_store(
    settings: Settings, load: LoadInput, *, name: str, lock_wait_s: float
) -> None:
    """Hold the trainer lock (exit 75 when another trainer kept it past ``lock_wait_s``), read
    the input, fit, and store the model as the new version of ``name``."""
    from interaction_recommender.model.keys import NoSigningKey
    from interaction_recommender.storage.locks import TRAINER_LOCK, try_session_lock
    from interaction_recommender.training.job import save

    database = await open_database(settings)
    try:
        async with try_session_lock(database, TRAINER_LOCK, wait_s=lock_wait_s) as mine:
            if not mine:
                typer.echo(f"another trainer held the trainer lock for {lock_wait_s:g} s", err=True)
                raise typer.Exit(75)  # EX_TEMPFAIL: try again later
            result = await _fit(settings, await load(database))
            try:
                added = await save(settings, database, result, name=name)
            except NoSigningKey as exc:
                typer.echo(str(exc), err=True)
                raise typer.Exit(1) from None
        _report(
            result,
            name=name,
            version=added.version,
            moved=added.moved,
            previousVersion=added.previous,
        )
    finally:
        await database.dispose()


async def train_to_model_path(settings: Settings, data: TrainingInput) -> None:
    """Fit and write a signed bundle to MODEL_PATH; every serving process imports it."""
    from interaction_recommender.model.bundle import save_bundle_file, write_bundle
    from interaction_recommender.model.keys import NoSigningKey, required_signing_keys

    database = await open_database(settings)
    try:
        keys = await required_signing_keys(settings, database)
    except NoSigningKey as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from None
    finally:
        await database.dispose()
    result = await _fit(settings, data)
    path = settings.effective_model_path
    bundle = await asyncio.to_thread(write_bundle, result.model, keys)
    await asyncio.to_thread(save_bundle_file, bundle, path)
    _report(result, version=result.model.version, path=str(path))


async def _fit(settings: Settings, data: TrainingInput) -> TrainResult:
    from rich.console import Console

    from interaction_recommender.training.job import fit

    if not data.events:
        typer.echo("no events to train on", err=True)
        raise typer.Exit(1)
    with Console(stderr=True).status("training") as status:
        return await asyncio.to_thread(fit, settings, data, progress=status.update)


def _report(result: TrainResult, **where: object) -> None:
    info = result.model.info
    counts = {k: info.get(k) for k in ("events", "users", "items", "positives")}
    typer.echo(
        dumps(
            {
                **where,
                "seconds": round(result.seconds, 1),
                "counts": counts,
                "offlineMetrics": result.metrics,
            }
        ).decode()
    )


def world_input(path: Path) -> LoadInput:
    """A world file from `demo generate` (it has no impression log)."""

    async def load(_: Database) -> TrainingInput:
        from interaction_recommender.demo.events import world_catalog, world_events
        from interaction_recommender.demo.world import read_world

        world = read_world(path)
        return TrainingInput(world_events(world), world_catalog(world))

    return load


def stored_input(settings: Settings) -> LoadInput:
    """Every stored event, the catalog and the impression log (training/job.py)."""

    async def load(database: Database) -> TrainingInput:
        from interaction_recommender.training.job import stored_training_input

        return await stored_training_input(settings, database)

    return load
