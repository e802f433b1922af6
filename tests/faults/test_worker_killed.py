"""The feature worker (`recommender worker`, the only process running consumers here) SIGKILLed
in the middle of a batch, several times under load, and started again each time.

A kill is aimed at an open feature transaction: the test watches `pg_locks` for the advisory
locks the feature consumer takes on its batch's users (namespace 4, held until the batch's
snapshot commit) and kills the worker as soon as one is granted. Postgres logs a client that
vanished inside a transaction; that line proves the cut landed mid-batch. Whatever the point
of the cut (before the snapshot commit, between it and the Redis write, before the offset commit),
the batch comes again and the effect is exactly once: every user's features equal the rebuild."""

from __future__ import annotations

import re
import time

import asyncpg
import pytest

from tests.faults.infra import WorkerProcess
from tests.faults.load import EventSource, LoadShape, client_for, running_load
from tests.faults.platform import Platform
from tests.faults.reconcile import dumps_report, reconcile

pytestmark = [pytest.mark.faults, pytest.mark.slow, pytest.mark.kafka, pytest.mark.timeout(300)]

KILLS = 3
WARM_UP_EVENTS = 300
BETWEEN_KILLS_EVENTS = 150
SHAPE = LoadShape(writers=8, events_per_s=80.0, readers=2, reads_per_s=10.0)
WORKER_ENV = {
    # A killed member holds its partitions until its session expires; a short session keeps the
    # test short (the default, 10 s, would only make each restart slower).
    "KAFKA_SESSION_TIMEOUT_MS": "3000",
}
_FEATURE_LOCK_HOLDERS = """
SELECT DISTINCT pid FROM pg_locks
WHERE locktype = 'advisory' AND classid = 4 AND objsubid = 2 AND granted
"""
# postgres.log, log_line_prefix '%m [%p] %a ': the backend of a client that died mid-transaction.
_CUT_TRANSACTION = re.compile(
    r"\[(\d+)\] .*unexpected EOF on client connection with an open transaction"
)


BATCH_WAIT_S = 60.0


def _cut_backends(postgres_log: str) -> set[int]:
    return {int(pid) for pid in _CUT_TRANSACTION.findall(postgres_log)}


async def _kill_in_feature_batch(worker: WorkerProcess, watcher: asyncpg.Connection) -> set[int]:
    """SIGKILL the worker as soon as a feature batch holds its users' locks; returns the
    backends that held them. Polled back to back: a batch's transaction lasts milliseconds."""
    deadline = time.monotonic() + BATCH_WAIT_S
    while not (holders := {r["pid"] for r in await watcher.fetch(_FEATURE_LOCK_HOLDERS)}):
        assert time.monotonic() < deadline, f"no feature batch within {BATCH_WAIT_S}s"
    await worker.kill()
    return holders


async def test_worker_sigkilled_mid_batch(platform: Platform) -> None:
    server = platform.server(ENABLE_CONSUMERS="false", **WORKER_ENV)
    worker = platform.worker(**WORKER_ENV)
    server.start()
    worker.start()
    holders: list[set[int]] = []  # per kill: the backends holding a feature batch's locks
    async with client_for(server.base_url) as client:
        await server.wait_ready(client)
        await worker.wait_ready()
        watcher = await asyncpg.connect(platform.postgres.dsn)
        try:
            async with running_load(client, EventSource(seed=1704), SHAPE) as traffic:
                await traffic.wait_acknowledged(WARM_UP_EVENTS, timeout=60)
                for _ in range(KILLS):
                    holders.append(await _kill_in_feature_batch(worker, watcher))
                    worker.start()
                    await worker.wait_ready()
                    await traffic.wait_acknowledged(
                        traffic.acknowledged_count + BETWEEN_KILLS_EVENTS, timeout=60
                    )
        finally:
            await watcher.close()
        report = await reconcile(platform, client, traffic)

    # Each backend notices its vanished client at its next read: long written by now.
    cut = _cut_backends(platform.postgres.log_text())
    mid_batch = [bool(pids & cut) for pids in holders]
    print(
        f"worker starts: {worker.starts}; kills that cut a feature transaction: {mid_batch}; "
        f"{traffic.summary()}; {dumps_report(report)}"
    )
    assert any(mid_batch), f"no kill cut a feature transaction (holders {holders}, cut {cut})"
