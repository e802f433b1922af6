"""One test's platform: its own Postgres, Redis and broker, and the service processes that run
against them (`recommender serve`, optionally `recommender worker`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from interaction_recommender.bus.topics import Topics
from interaction_recommender.settings import Settings
from tests.faults.infra import PostgresCluster, RedisServer, WorkerProcess, log_tail
from tests.fixtures.server import ServerProcess, platform_env, server_port
from tests.fixtures.services import KafkaBroker

__all__ = ["Platform"]

TOPIC_PREFIX_NAME = "faults"  # platform_env's name: topics are prefixed "faults."
ADMIN_TOKEN = "faults-admin-token-not-a-secret"


@dataclass
class Platform:
    tmp_path: Path
    postgres: PostgresCluster
    redis: RedisServer
    kafka: KafkaBroker
    kafka_log: Path
    servers: list[ServerProcess] = field(default_factory=list)
    workers: list[WorkerProcess] = field(default_factory=list)

    def env(self, **overrides: str) -> dict[str, str]:
        """The platform mode's environment (tests/fixtures/server.py), on this test's own
        Postgres (its default schema) instead of a schema of the shared one."""
        env = platform_env(TOPIC_PREFIX_NAME, self.kafka, self.redis.url, self.tmp_path)
        env["DATABASE_URL"] = self.postgres.url
        del env["DATABASE_SCHEMA"]
        env["ADMIN_TOKEN"] = ADMIN_TOKEN  # the reconciliation reads GET /admin/dlq
        env.update(overrides)
        return env

    def settings(self) -> Settings:
        """The same settings, for the test's own reads (database, Redis key names, groups)."""
        env = self.env()
        return Settings(
            database_url=env["DATABASE_URL"],
            redis_url=env["REDIS_URL"],
            enable_kafka=True,
            kafka_bootstrap_servers=env["KAFKA_BOOTSTRAP_SERVERS"],
            kafka_topic_prefix=env["KAFKA_TOPIC_PREFIX"],
        )

    @property
    def admin_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {ADMIN_TOKEN}"}

    @property
    def topics(self) -> Topics:
        return Topics.with_prefix(self.settings().kafka_topic_prefix)

    def server(self, **overrides: str) -> ServerProcess:
        """A `recommender serve` process (not started), stopped at teardown."""
        log = self.tmp_path / f"server-{len(self.servers) + 1}.log"
        server = ServerProcess(server_port(), self.env(**overrides), log)
        self.servers.append(server)
        return server

    def worker(self, **overrides: str) -> WorkerProcess:
        """A `recommender worker` process (not started), stopped at teardown."""
        log = self.tmp_path / f"worker-{len(self.workers) + 1}.log"
        worker = WorkerProcess(self.env(**overrides), log)
        self.workers.append(worker)
        return worker

    async def stop_processes(self) -> None:
        for server in self.servers:
            await server.stop()
        for worker in self.workers:
            await worker.stop()

    def log_tails(self) -> str:
        """What to read after a failure: the tail of every log of this test."""
        parts = [f"--- server-{i}.log ---\n{s.log_tail()}" for i, s in enumerate(self.servers, 1)]
        parts += [f"--- {w.log_path.name} ---\n{w.log_tail()}" for w in self.workers]
        parts.append(f"--- {self.postgres.log_path.name} ---\n{self.postgres.log_tail()}")
        parts.append(f"--- {self.redis.log_path.name} ---\n{self.redis.tail()}")
        parts.append(f"--- {self.kafka_log.name} ---\n{log_tail(self.kafka_log, 20)}")
        return "\n".join(parts)
