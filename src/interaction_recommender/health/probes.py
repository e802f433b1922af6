"""One probe per component, all run concurrently, each bounded by a timeout.

Statuses: healthy | degraded | unhealthy | disabled. Overall = the worst enabled component.
`unhealthy` is reserved for "cannot take events" (the database); a broken bus, cache or consumer
degrades the service. The Java callers treat anything but `healthy` as down, so `degraded` is only
reported when something is really wrong.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from interaction_recommender.bus.base import Bus, BusError
from interaction_recommender.bus.consumer import ConsumerLoop
from interaction_recommender.deadletter.repository import DeadLetterRepository
from interaction_recommender.outbox import OutboxRelay, OutboxRepository
from interaction_recommender.recs.registry import ModelRegistry
from interaction_recommender.storage import Database, head_revision
from interaction_recommender.storage.migrate import current_revision

__all__ = ["ComponentHealth", "HealthChecker", "Status"]

Status = Literal["healthy", "degraded", "unhealthy", "disabled"]
_RANK: dict[str, int] = {"disabled": -1, "healthy": 0, "degraded": 1, "unhealthy": 2}
COMPONENTS = ("database", "redis", "kafka", "outbox", "model", "consumers")


@dataclass(frozen=True)
class ComponentHealth:
    status: Status
    latency_ms: float
    message: str


Probe = Callable[[], Awaitable[ComponentHealth]]
_NOT_BUILT = ComponentHealth("disabled", 0.0, "not part of this build yet")
_NOT_BUILT = ComponentHealth("disabled", 0.0, "not part of this build yet")


def overall(components: dict[str, ComponentHealth]) -> Literal["healthy", "degraded", "unhealthy"]:
    worst = max((_RANK[c.status] for c in components.values()), default=0)
    return "unhealthy" if worst == 2 else "degraded" if worst == 1 else "healthy"


class HealthChecker:
    def __init__(
        self,
        *,
        database: Database,
        bus: Bus,
        relay: OutboxRelay,
        redis: object | None,
        timeout_s: float,
        outbox_degraded_age_s: float,
    ) -> None:
        self._database = database
        self._bus = bus
        self._relay = relay
        self._redis = redis
        self._timeout_s = timeout_s
        self._outbox_degraded_age_s = outbox_degraded_age_s
        self._probes: dict[str, Probe] = {
            "database": self._database_probe,
            "redis": self._redis_probe,
            "kafka": self._kafka_probe,
            "outbox": self._outbox_probe,
        }
        self._schema_at_head = False
        self._consumers: list[ConsumerLoop] = []
        self._stuck_after_s = 60.0

    def register(self, name: str, probe: Probe) -> None:
        """Later stages (model, consumers) add their own probe."""
        self._probes[name] = probe

    async def check(self) -> dict[str, ComponentHealth]:
        names = list(self._probes)
        results = await asyncio.gather(*(self._bounded(n, self._probes[n]) for n in names))
        components = dict(zip(names, results, strict=True))
        for name in COMPONENTS:
            components.setdefault(name, _NOT_BUILT)
        return components

    async def ready(self) -> tuple[bool, str]:
        """Ready = the database answers and its schema is at the code's migration head."""
        try:
            async with asyncio.timeout(self._timeout_s):
                if not self._schema_at_head:
                    revision = await current_revision(self._database.engine)
                    if revision != head_revision():
                        return False, f"schema at {revision}, code needs {head_revision()}"
                    self._schema_at_head = True
                await self._database.ping()
        except Exception as exc:  # any failure means "not ready", never an error response
            return False, f"database unavailable: {type(exc).__name__}"
        return True, "ready"

    async def _bounded(self, name: str, probe: Probe) -> ComponentHealth:
        started = time.perf_counter()
        try:
            async with asyncio.timeout(self._timeout_s):
                return await probe()
        except TimeoutError:
            # Only a database that does not answer stops ingestion; anything else degrades.
            status: Status = "unhealthy" if name == "database" else "degraded"
            return ComponentHealth(status, _ms(started), f"no answer within {self._timeout_s}s")

    def watch_model(self, registry: ModelRegistry) -> None:
        async def probe() -> ComponentHealth:
            # Healthy either way: without a model the popularity fallback is the designed
            # answer (the callers read anything but healthy as down); a refused bundle is a
            # message, a metric and an alert (deploy/alerts.yml), not a degraded service.
            loaded = registry.current
            refused = (
                f"; newest model refused: {registry.last_error}" if registry.last_error else ""
            )
            if loaded is None:
                what = "no usable model" if registry.last_error else "no model trained yet"
                message = f"{what}: answers come from the popularity fallback"
                return ComponentHealth("healthy", 0.0, message + refused)
            message = f"version {loaded.model.version}, {loaded.view.n_items} movies"
            return ComponentHealth("healthy", 0.0, message + refused)

        self._probes["model"] = probe

    def watch_consumers(self, consumers: list[ConsumerLoop], *, stuck_after_s: float) -> None:
        self._consumers = consumers
        self._stuck_after_s = stuck_after_s
        if consumers:
            self._probes["consumers"] = self._consumers_probe

    async def _consumers_probe(self) -> ComponentHealth:
        """Each consumer loop must be running, not failing and not stuck (messages waiting, no
        progress); otherwise features and placeholders stop, so the service is degraded."""
        started = time.perf_counter()
        now = datetime.now(UTC)
        problems, parts = [], []
        for consumer in self._consumers:
            state = consumer.state
            lag = sum(state.lag.values())
            per_partition = ",".join(
                f"{p.rsplit(':', 1)[-1]}={n}" for p, n in sorted(state.lag.items())
            )
            parts.append(
                f"{consumer.name}: processed={state.processed} lag={lag} [{per_partition}]"
                + (f" lastError={state.last_error}" if state.last_error else "")
            )
            if not state.running:
                problems.append(f"{consumer.name}: not running")
            elif state.consecutive_failures:
                problems.append(f"{consumer.name}: failing ({state.last_error})")
            elif state.stuck(now, self._stuck_after_s):
                problems.append(f"{consumer.name}: stuck (lag {lag}, no progress)")
        try:
            async with self._database.transaction() as conn:
                dead = await DeadLetterRepository(conn).count_pending()
            parts.append(f"deadLetters={dead}")
        except Exception as exc:
            parts.append(f"deadLetters=unknown ({type(exc).__name__})")
        status: Status = "degraded" if problems else "healthy"
        return ComponentHealth(status, _ms(started), "; ".join(problems + parts))

    async def _database_probe(self) -> ComponentHealth:
        try:
            latency = await self._database.ping()
        except Exception as exc:  # a probe reports, it never raises
            return ComponentHealth("unhealthy", 0.0, f"unreachable: {type(exc).__name__}")
        return ComponentHealth("healthy", round(latency, 3), self._database.dialect)

    async def _redis_probe(self) -> ComponentHealth:
        if self._redis is None:
            return ComponentHealth("disabled", 0.0, "REDIS_URL not set: in-memory stores")
        started = time.perf_counter()
        try:
            await self._redis.ping()  # type: ignore[attr-defined]
        except Exception as exc:
            return ComponentHealth("degraded", _ms(started), f"unreachable: {type(exc).__name__}")
        return ComponentHealth("healthy", _ms(started), "ok")

    async def _kafka_probe(self) -> ComponentHealth:
        if self._bus.name != "kafka":
            return ComponentHealth("disabled", 0.0, "ENABLE_KAFKA not set: in-process bus")
        started = time.perf_counter()
        try:
            state = await self._bus.probe()
        except BusError as exc:
            return ComponentHealth("degraded", _ms(started), str(exc))
        relay = self._relay.state
        if relay.consecutive_failures > 0:
            return ComponentHealth(
                "degraded", _ms(started), f"publishing fails: {relay.last_error or 'unknown'}"
            )
        return ComponentHealth("healthy", _ms(started), state)

    async def _outbox_probe(self) -> ComponentHealth:
        started = time.perf_counter()
        try:
            async with self._database.transaction() as conn:
                repo = OutboxRepository(conn)
                backlog, oldest = await repo.backlog()
                set_aside = await repo.count_set_aside()
        except Exception as exc:
            return ComponentHealth("degraded", _ms(started), f"unknown: {type(exc).__name__}")
        age = (datetime.now(UTC) - oldest).total_seconds() if oldest else 0.0
        # Set-aside rows block nothing: a message, a metric and an alert, not a degraded service.
        message = f"backlog={backlog} oldestAgeS={max(age, 0.0):.1f} setAside={set_aside}"
        if not self._relay.state.running:
            return ComponentHealth("degraded", _ms(started), "relay not running; " + message)
        if age > self._outbox_degraded_age_s:
            return ComponentHealth("degraded", _ms(started), "relay behind; " + message)
        return ComponentHealth("healthy", _ms(started), message)


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 3)
