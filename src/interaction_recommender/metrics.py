"""Prometheus metrics: every metric the service exports is declared here, once."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

__all__ = [
    "EVENTS",
    "HTTP_LATENCY",
    "HTTP_REQUESTS",
    "OUTBOX_BACKLOG",
    "OUTBOX_OLDEST_AGE",
    "OUTBOX_PUBLISHED",
    "OUTBOX_PUBLISH_FAILURES",
]

HTTP_REQUESTS = Counter(
    "http_requests_total",
    "HTTP requests by route template, method and status.",
    ["route", "method", "status"],
)
HTTP_LATENCY = Histogram(
    "http_request_duration_seconds",
    "HTTP request latency by route template.",
    ["route", "method"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
EVENTS = Counter(
    "ingested_events_total",
    "Events received, by type and outcome (accepted|duplicate|rejected).",
    ["type", "status"],
)
OUTBOX_BACKLOG = Gauge("outbox_backlog", "Outbox rows committed but not yet published.")
OUTBOX_OLDEST_AGE = Gauge(
    "outbox_oldest_age_seconds", "Age of the oldest unpublished outbox row (0 when empty)."
)
OUTBOX_PUBLISHED = Counter("outbox_published_total", "Outbox rows published to the bus.")
OUTBOX_PUBLISH_FAILURES = Counter(
    "outbox_publish_failures_total", "Relay batches that failed to publish (retried later)."
)
