"""`recommender model ...`: the model store from the command line (versions, names, history,
rollback, import and export, signing, migration of older artifacts, garbage collection)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from interaction_recommender.logs import configure_logging
from interaction_recommender.settings import Settings
from interaction_recommender.wire import dumps

if TYPE_CHECKING:  # imported lazily: a fast --help
    from interaction_recommender.model.store import ModelStore
    from interaction_recommender.storage.database import Database

__all__ = ["model_app"]

model_app = typer.Typer(
    no_args_is_help=True, help="Model versions and names in the model store; signing."
)

T = TypeVar("T")
NameOption = Annotated[str, typer.Option(help="The model name.")]


def _with_store(work: Callable[[ModelStore, Settings, Database], Awaitable[T]]) -> T:
    """Run ``work`` with the store (the service's keys); a refusal exits 1 with its reason."""
    from interaction_recommender.cli.training import open_database
    from interaction_recommender.model.bundle import BundleError
    from interaction_recommender.model.keys import NoSigningKey, required_signing_keys
    from interaction_recommender.model.store import ModelStore, StoreError

    settings = Settings()
    configure_logging(settings.log_level, json=settings.log_json)

    async def run() -> T:
        database = await open_database(settings)
        try:
            keys = await required_signing_keys(settings, database)
            return await work(ModelStore(database, keys), settings, database)
        finally:
            await database.dispose()

    try:
        return asyncio.run(run())
    except (BundleError, StoreError, NoSigningKey) as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from None


def _echo(document: Any) -> None:
    typer.echo(dumps(document).decode())


@model_app.command("list")
def model_list(
    limit: Annotated[int, typer.Option(help="The newest versions to list.")] = 20,
) -> None:
    """The names and the newest versions, with their training window and offline metrics."""

    async def work(store: ModelStore, *_: object) -> dict[str, Any]:
        names = await store.names()
        versions = await store.versions(limit)
        return {
            "names": {
                n: {"version": v.version, "updatedAt": v.updated_at} for n, v in names.items()
            },
            "versions": [
                {
                    "version": v.version,
                    "createdAt": v.created_at,
                    "source": v.source,
                    "trainedFor": v.trained_for,
                    "sizeBytes": v.size_bytes,
                    "trainedAt": v.manifest.get("trainedAt"),
                    "dataWindow": v.manifest.get("dataWindow"),
                    "offlineMetrics": v.manifest.get("offlineMetrics"),
                }
                for v in versions
            ],
        }

    _echo(_with_store(work))


@model_app.command("history")
def model_history(name: NameOption = "champion") -> None:
    """Every move of a name, newest first."""

    async def work(store: ModelStore, *_: object) -> list[dict[str, Any]]:
        return await store.history(name)

    _echo(_with_store(work))


@model_app.command("rollback")
def model_rollback(
    name: NameOption = "champion",
    to: Annotated[
        str | None, typer.Option(help="A kept version (default: the one before the last move).")
    ] = None,
) -> None:
    """Point a name back at its previous version (or --to a kept one); every serving process
    switches within MODEL_POLL_S."""

    async def work(store: ModelStore, *_: object) -> dict[str, Any]:
        previous, version = await store.rollback(name, to)
        return {"name": name, "previousVersion": previous, "version": version}

    _echo(_with_store(work))


@model_app.command("import")
def model_import(
    path: Annotated[Path, typer.Argument(help="A signed bundle.")],
    name: NameOption = "champion",
) -> None:
    """Store a signed bundle as a version and point the name at it (idempotent by content)."""

    async def work(store: ModelStore, *_: object) -> dict[str, Any]:
        added = await store.add(path.read_bytes(), source="import", name=name)
        return {"name": name, **_added(added)}

    _echo(_with_store(work))


@model_app.command("export")
def model_export(
    output: Annotated[Path, typer.Argument(help="Where to write the bundle.")],
    name: NameOption = "champion",
    version: Annotated[str | None, typer.Option(help="A version instead of a name's.")] = None,
) -> None:
    """Write a stored version (the name's, or --version) to a bundle file."""
    from interaction_recommender.model.bundle import save_bundle_file
    from interaction_recommender.model.store import StoreError

    async def work(store: ModelStore, *_: object) -> dict[str, Any]:
        chosen = version
        if chosen is None:
            named = (await store.names()).get(name)
            if named is None:
                raise StoreError(f"no model is named {name!r}")
            chosen = named.version
        bundle = await store.bundle(chosen)
        await asyncio.to_thread(save_bundle_file, bundle, output)
        return {"version": chosen, "path": str(output), "sizeBytes": len(bundle)}

    _echo(_with_store(work))


@model_app.command("sign")
def model_sign(
    path: Annotated[Path, typer.Argument(help="A bundle (e.g. one with your own ranker).")],
    output: Annotated[Path | None, typer.Option(help="Default: sign in place.")] = None,
) -> None:
    """Sign a bundle with the service's key (the first of MODEL_SIGNING_KEYS, or the stored
    one): only signed bundles are ever loaded."""
    from interaction_recommender.model.bundle import save_bundle_file, sign_bundle

    async def work(store: ModelStore, settings: Settings, database: Database) -> dict[str, Any]:
        from interaction_recommender.model.keys import required_signing_keys

        keys = await required_signing_keys(settings, database)
        signed = await asyncio.to_thread(sign_bundle, path.read_bytes(), keys)
        target = output or path
        await asyncio.to_thread(save_bundle_file, signed, target)
        return {"path": str(target), "keyId": keys.signing_key_id}

    _echo(_with_store(work))


@model_app.command("migrate")
def model_migrate(
    path: Annotated[Path, typer.Argument(help="An artifact of an earlier release (joblib).")],
    name: NameOption = "champion",
) -> None:
    """Convert an artifact of an earlier release (a joblib file and its manifest beside it,
    checked against its sha256 and read through the restricted unpickler) into a signed bundle
    and store it as a version of the name. A model of older feature semantics is refused: it
    cannot be scored (`recommender model upgrade` trains a current one)."""
    from interaction_recommender.model.artifact import ArtifactError, load_artifact
    from interaction_recommender.model.bundle import write_bundle
    from interaction_recommender.model.store import StoreError

    async def work(store: ModelStore, settings: Settings, database: Database) -> dict[str, Any]:
        from interaction_recommender.model.keys import required_signing_keys

        try:
            model, _ = await asyncio.to_thread(load_artifact, path)
        except ArtifactError as exc:
            raise StoreError(f"{path} cannot be migrated: {exc}") from None
        keys = await required_signing_keys(settings, database)
        bundle = await asyncio.to_thread(write_bundle, model, keys)
        added = await store.add(bundle, source="migrate", name=name)
        return {"name": name, "from": str(path), **_added(added)}

    _echo(_with_store(work))


@model_app.command("gc")
def model_gc(
    keep: Annotated[
        int | None, typer.Option(help="Earlier versions kept per name (default MODEL_KEEP).")
    ] = None,
) -> None:
    """Delete the versions nothing needs (not named, not among each name's last --keep)."""

    async def work(store: ModelStore, settings: Settings, _: Database) -> dict[str, Any]:
        deleted = await store.collect_garbage(keep if keep is not None else settings.model_keep)
        return {"deleted": deleted}

    _echo(_with_store(work))


@model_app.command("upgrade")
def model_upgrade() -> None:
    """Before rolling out a release whose feature semantics are newer than the champion's:
    train a new champion from the stored events (like `recommender train`) so that the new API
    processes find one they can score. Does nothing when the champion is current."""
    from interaction_recommender.cli.training import stored_input, train_into_store
    from interaction_recommender.model.arrays import FEATURE_SEMANTICS

    async def work(store: ModelStore, *_: object) -> Any:
        named = (await store.names()).get("champion")
        if named is None:
            return None
        versions = {v.version: v for v in await store.versions(None)}
        return versions[named.version].manifest.get("featureSemantics", 1)

    semantics = _with_store(work)
    if semantics == FEATURE_SEMANTICS:
        typer.echo(json.dumps({"status": "current", "featureSemantics": semantics}))
        return
    typer.echo(
        f"the champion has feature semantics {semantics}, this release scores "
        f"{FEATURE_SEMANTICS}: training a new one",
        err=True,
    )
    settings = Settings()
    asyncio.run(
        train_into_store(settings, stored_input(settings), name="champion", lock_wait_s=600.0)
    )


def _added(added: Any) -> dict[str, Any]:
    return {
        "version": added.version,
        "created": added.created,
        "moved": added.moved,
        "previousVersion": added.previous,
    }
