"""The engine, built once per process; the unit of work (``transaction()``); and post-commit
notifications: a write marks its transaction with a channel (``notify_after_commit``), and the
channel's listeners run once that transaction has committed (never after a rollback)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg
import orjson
from sqlalchemy import event, make_url, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry, NullPool

from interaction_recommender.settings import Settings

__all__ = ["Database", "notify_after_commit"]

_CHANNELS = "interaction_recommender.after_commit"
"""Key in the connection's info dict: the channels the open transaction will notify."""


def notify_after_commit(conn: AsyncConnection, channel: str) -> None:
    """Once the transaction of ``conn`` (opened by ``Database.transaction``) commits, call the
    listeners of ``channel`` (in this process). Calling it twice in one transaction notifies once.
    """
    conn.info.setdefault(_CHANNELS, set()).add(channel)


def _json_dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


class Database:
    """Owns the async engine. ``transaction()`` is the unit of work: commit on success, rollback
    on any exception; services receive the connection and never commit themselves."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._driver_pool: asyncpg.Pool | None = None
        self._driver_pool_lock = asyncio.Lock()
        self._listeners: defaultdict[str, list[Callable[[], None]]] = defaultdict(list)
        url = settings.effective_database_url
        self.dialect = "sqlite" if url.startswith("sqlite") else "postgresql"
        common: dict[str, Any] = {
            "json_serializer": _json_dumps,
            "json_deserializer": orjson.loads,
            # An error's text reaches logs and /health: never a user's search text or ids.
            "hide_parameters": True,
        }
        if self.dialect == "sqlite":
            Path(url.split("///", 1)[1]).parent.mkdir(parents=True, exist_ok=True)
            # One connection: SQLite has one writer anyway, and a single connection can never
            # meet "database is locked". The embedded mode is for one process on a laptop.
            self.engine: AsyncEngine = create_async_engine(
                url,
                pool_size=1,
                max_overflow=0,
                # Everything shares the one connection: wait longer for it than on Postgres
                # (still well under a caller's 10 s timeout).
                pool_timeout=max(settings.db_pool_timeout_s, 8.0),
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
                connect_args=self._postgres_connect_args(),
                pool_timeout=settings.db_pool_timeout_s,
                **common,
            )

    def migration_engine(self) -> AsyncEngine:
        """An engine of its own for a migration run (the caller disposes of it): Postgres
        without the statement timeouts, server or client side, which would end a wait for the
        migrations' lock, or a long schema change, half way; SQLite: the one engine."""
        if self.dialect == "sqlite":
            return self.engine
        return create_async_engine(
            self._settings.effective_database_url,
            poolclass=NullPool,
            connect_args=self._postgres_connect_args(bounded=False),
            hide_parameters=True,
        )

    def _postgres_connect_args(self, *, bounded: bool = True) -> dict[str, Any]:
        settings = self._settings
        server_settings = {
            "application_name": "interaction-recommender",
            "statement_timeout": str(settings.db_statement_timeout_ms if bounded else 0),
            # A transaction left open by a hung task must not hold locks for ever.
            "idle_in_transaction_session_timeout": "30000",
        }
        if settings.database_schema:
            server_settings["search_path"] = settings.database_schema
        return {
            "timeout": settings.db_connect_timeout_s,
            "command_timeout": settings.db_statement_timeout_ms / 1000 + 1 if bounded else None,
            "server_settings": server_settings,
        }

    async def driver_pool(self) -> asyncpg.Pool:
        """A plain asyncpg pool (Postgres only) for the ingest hot path, where SQLAlchemy's pool
        checkout alone cost ~10% of a request (docs/benchmarks.md). Created on first use;
        its size comes out of the same DB_POOL_SIZE budget."""
        assert self.dialect == "postgresql", "the driver pool exists on Postgres only"
        if self._driver_pool is None:
            async with self._driver_pool_lock:
                if self._driver_pool is None:
                    dsn = make_url(self._settings.effective_database_url).set(
                        drivername="postgresql"
                    )
                    self._driver_pool = await asyncpg.create_pool(
                        dsn.render_as_string(hide_password=False),
                        min_size=0,
                        max_size=self._settings.db_pool_size,
                        reset=_keep_session,
                        **self._postgres_connect_args(),
                    )
        return self._driver_pool

    def listen(self, channel: str, listener: Callable[[], None]) -> None:
        """Call ``listener`` after every commit that notifies ``channel`` (it must not block)."""
        self._listeners[channel].append(listener)

    def notify(self, channel: str) -> None:
        """For writes that commit outside ``transaction()`` (the asyncpg hot path): tell the
        channel's listeners now; call only after the commit."""
        for listener in self._listeners.get(channel, ()):
            # The data is committed: a failing listener must not make the write look failed.
            with contextlib.suppress(Exception):
                listener()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncConnection]:
        """The unit of work: committed when the block ends, rolled back if it raises. The
        connection's info outlives the checkout (pooled), so channels left behind by a
        rolled-back transaction are dropped first."""
        async with self.engine.begin() as conn:
            conn.info.pop(_CHANNELS, None)
            yield conn
            channels = conn.info.pop(_CHANNELS, ())
        for channel in channels:
            self.notify(channel)

    async def ping(self) -> float:
        """Round-trip time of a trivial query, in milliseconds."""
        started = time.perf_counter()
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        return (time.perf_counter() - started) * 1000

    async def dispose(self) -> None:
        if self._driver_pool is not None:
            await self._driver_pool.close()
        await self.engine.dispose()


async def _keep_session(_: asyncpg.Connection) -> None:
    """Skip asyncpg's reset on release (a round trip per request: RESET ALL, unlock all, ...):
    the hot path only runs single statements and transaction-scoped locks, which leave no
    session state behind."""


def _sqlite_pragmas(dbapi_connection: Any, _: ConnectionPoolEntry) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")  # an acknowledged event survives a power cut
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()
