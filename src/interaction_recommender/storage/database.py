"""The engine, built once per process, and the transaction a request owns."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry

from interaction_recommender.settings import Settings

__all__ = ["Database"]


def _json_dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


class Database:
    """Owns the async engine. ``transaction()`` is the unit of work: commit on success, rollback
    on any exception; services receive the connection and never commit themselves."""

    def __init__(self, settings: Settings) -> None:
        url = settings.effective_database_url
        self.dialect = "sqlite" if url.startswith("sqlite") else "postgresql"
        common: dict[str, Any] = {
            "json_serializer": _json_dumps,
            "json_deserializer": orjson.loads,
            "pool_timeout": settings.db_pool_timeout_s,
        }
        if self.dialect == "sqlite":
            Path(url.split("///", 1)[1]).parent.mkdir(parents=True, exist_ok=True)
            # One connection: SQLite has one writer anyway, and a single connection can never
            # meet "database is locked". The embedded mode is for one process on a laptop.
            self.engine: AsyncEngine = create_async_engine(
                url,
                pool_size=1,
                max_overflow=0,
                connect_args={"timeout": settings.db_statement_timeout_ms / 1000},
                **common,
            )
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
        else:
            self.engine = create_async_engine(
                url,
                pool_size=settings.db_pool_size,
                max_overflow=settings.db_max_overflow,
                pool_recycle=1800,
                connect_args={
                    "timeout": settings.db_connect_timeout_s,
                    "command_timeout": settings.db_statement_timeout_ms / 1000 + 1,
                    "server_settings": {
                        "application_name": "interaction-recommender",
                        "statement_timeout": str(settings.db_statement_timeout_ms),
                        # A transaction left open by a hung task must not hold locks for ever.
                        "idle_in_transaction_session_timeout": "30000",
                        **(
                            {"search_path": settings.database_schema}
                            if settings.database_schema
                            else {}
                        ),
                    },
                },
                **common,
            )

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncConnection]:
        async with self.engine.begin() as conn:
            yield conn

    async def ping(self) -> float:
        """Round-trip time of a trivial query, in milliseconds."""
        started = time.perf_counter()
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        return (time.perf_counter() - started) * 1000

    async def dispose(self) -> None:
        await self.engine.dispose()


def _sqlite_pragmas(dbapi_connection: Any, _: ConnectionPoolEntry) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")  # an acknowledged event survives a power cut
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()
