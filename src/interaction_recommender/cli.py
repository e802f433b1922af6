"""The `recommender` command line."""

from __future__ import annotations

import asyncio
import os
from typing import Annotated

import typer

from interaction_recommender.logs import configure_logging
from interaction_recommender.settings import Settings

__all__ = ["main"]

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
    """Apply database migrations (safe when several replicas run it at once)."""
    from interaction_recommender.storage import Database
    from interaction_recommender.storage import migrate as run_migrations

    settings = Settings()
    configure_logging(settings.log_level, json=settings.log_json)

    async def _run() -> None:
        database = Database(settings)
        try:
            await run_migrations(database.engine)
        finally:
            await database.dispose()

    asyncio.run(_run())
    typer.echo("database schema is at head")


def _single_threaded_math() -> None:
    # BLAS threads fight the event loop for 2 cores (docs/benchmarks.md): serving pins them to one.
    for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(name, "1")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
