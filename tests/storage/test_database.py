"""Post-commit notifications: a transaction that wrote outbox rows wakes their listeners once it
committed, never after a rollback, and a rolled-back transaction's mark does not leak into the
next transaction on the same pooled connection."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from interaction_recommender.outbox.repository import (
    OUTBOX_CHANNEL,
    OutboxMessage,
    OutboxRepository,
)
from interaction_recommender.storage import Database, migrate
from interaction_recommender.storage.database import notify_after_commit
from tests.fixtures.app import embedded_settings


@pytest.fixture
async def database(tmp_path: Path) -> Database:
    database = Database(embedded_settings(tmp_path))
    await migrate(database)
    yield database  # type: ignore[misc]
    await database.dispose()


async def test_an_outbox_write_notifies_once_after_its_commit(database: Database) -> None:
    calls: list[str] = []
    database.listen(OUTBOX_CHANNEL, lambda: calls.append("woken"))
    message = OutboxMessage(topic="t", key="k", payload=b"{}")

    async with database.transaction() as conn:
        await OutboxRepository(conn).add([message], datetime.now(UTC))
        await OutboxRepository(conn).add([message], datetime.now(UTC))
        assert calls == []  # not before the commit

    assert calls == ["woken"]


async def test_a_rollback_notifies_nothing_and_leaves_no_mark(database: Database) -> None:
    calls: list[str] = []
    database.listen("channel", lambda: calls.append("woken"))

    async def marked_then_failed() -> None:
        async with database.transaction() as conn:
            notify_after_commit(conn, "channel")
            raise RuntimeError("rolled back")

    with pytest.raises(RuntimeError):
        await marked_then_failed()
    async with database.transaction():  # the same pooled connection (SQLite has one)
        pass

    assert calls == []


async def test_a_failing_listener_does_not_fail_the_committed_write(database: Database) -> None:
    calls: list[str] = []

    def broken() -> None:
        raise ValueError("listener bug")

    database.listen("channel", broken)
    database.listen("channel", lambda: calls.append("still woken"))

    async with database.transaction() as conn:
        notify_after_commit(conn, "channel")

    assert calls == ["still woken"]
