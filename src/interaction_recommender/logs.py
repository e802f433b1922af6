"""Structured logging: one JSON object per line, a request id bound per request.

Library loggers (uvicorn, aiokafka, sqlalchemy) go through the same renderer. Log lines never
carry personal data beyond ids: no search queries, no tokens, no request bodies.
"""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime

import orjson
import structlog

__all__ = ["AccessLog", "configure_logging"]

_ACCESS_LOGGER = "interaction_recommender.http"


def configure_logging(level: str = "INFO", *, json: bool = True) -> None:
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
    ]
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
    )
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # uvicorn's own access log would duplicate ours (and is not JSON).
    logging.getLogger("uvicorn.access").disabled = True
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    logging.getLogger("aiokafka").setLevel(max(logging.WARNING, root.level))


class AccessLog:
    """One line per request. With JSON logs it is written directly, the same keys as structlog
    would write, in one write and flush: through structlog and the logging module it cost about
    150 µs a request (bench/edge.py). Console logs (development) go through structlog."""

    def __init__(self, *, json: bool) -> None:
        self._json = json
        self._log = structlog.get_logger(_ACCESS_LOGGER)

    def write(
        self,
        *,
        method: str,
        route: str,
        status: int,
        duration_ms: float,
        request_id: str,
        traceparent: str | None,
    ) -> None:
        if not logging.getLogger(_ACCESS_LOGGER).isEnabledFor(logging.INFO):
            return
        if not self._json:
            self._log.info(
                "request", method=method, route=route, status=status, duration_ms=duration_ms
            )
            return
        record: dict[str, object] = {
            "method": method,
            "route": route,
            "status": status,
            "duration_ms": duration_ms,
            "event": "request",
            "request_id": request_id,
        }
        if traceparent is not None:
            record["traceparent"] = traceparent
        record.update(level="info", logger=_ACCESS_LOGGER, timestamp=datetime.now(UTC))
        stream = sys.stdout
        stream.write(orjson.dumps(record, option=orjson.OPT_UTC_Z).decode() + "\n")
        stream.flush()
