"""Prometheus metrics: every metric the service exports is declared here, once."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram, Info

__all__ = [
    "CONSUMER_LAG",
    "CONSUMER_POISON",
    "DEAD_LETTERS",
    "ERASED_USER_WRITES_DROPPED",
    "ERASURES",
    "ERASURE_OLDEST_PENDING_AGE",
    "ERASURE_STEP_FAILURES",
    "EVENTS",
    "FEATURE_FRESHNESS",
    "FEATURE_PUBLISH_FAILURES",
    "FEEDBACK",
    "HTTP_LATENCY",
    "HTTP_REQUESTS",
    "IMPRESSIONS_DROPPED",
    "IMPRESSIONS_PENDING",
    "IMPRESSIONS_WRITTEN",
    "MODEL_AGE",
    "MODEL_INFO",
    "MODEL_REFUSED",
    "NEAR_CACHE_INVALIDATIONS",
    "ONLINE_STORE_FAILURES",
    "OUTBOX_BACKLOG",
    "OUTBOX_OLDEST_AGE",
    "OUTBOX_PUBLISHED",
    "OUTBOX_PUBLISH_FAILURES",
    "OUTBOX_SET_ASIDE",
    "OUTBOX_SET_ASIDE_ROWS",
    "RECOMMEND_CACHE",
    "RECOMMEND_FALLBACKS",
    "RECOMMEND_LATENCY",
    "RECOMMEND_STAGE",
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
ERASURES = Counter(
    "user_erasures_total", "User erasure jobs, by stage (requested, done).", ["stage"]
)
ERASURE_STEP_FAILURES = Counter(
    "user_erasure_step_failures_total", "Erasure step attempts that failed (retried).", ["step"]
)
ERASURE_OLDEST_PENDING_AGE = Gauge(
    "user_erasure_oldest_pending_seconds", "Age of the oldest erasure job not done (0: none)."
)
ERASED_USER_WRITES_DROPPED = Counter(
    "erased_user_writes_dropped_total",
    "Writes for erased users answered as usual and not stored (event, feedback, impression).",
    ["kind"],
)
OUTBOX_SET_ASIDE = Counter(
    "outbox_set_aside_total", "Outbox rows the bus refused for good (too large), set aside."
)
OUTBOX_SET_ASIDE_ROWS = Gauge(
    "outbox_set_aside_rows", "Set-aside outbox rows kept (listed by GET /admin/dlq)."
)

CONSUMER_POISON = Counter(
    "consumer_poison_total",
    "Records a consumer kept failing on, isolated from their batch and dead-lettered.",
    ["consumer"],
)
CONSUMER_LAG = Gauge(
    "consumer_lag",
    "Messages not yet consumed, per consumer group and partition.",
    ["group", "topic", "partition"],
)
DEAD_LETTERS = Counter("dead_letters_total", "Messages dead-lettered by the feature consumer.")
FEATURE_FRESHNESS = Histogram(
    "feature_freshness_seconds",
    "Event stored (serverTimestamp) to its features stored.",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
FEATURE_PUBLISH_FAILURES = Counter(
    "processed_features_publish_failures_total", "Feature updates not published (best effort)."
)
ONLINE_STORE_FAILURES = Counter(
    "online_feature_store_failures_total", "Failed writes to Redis (retried on the next batch)."
)

_FAST = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)
RECOMMEND_LATENCY = Histogram(
    "recommend_seconds", "GET /recommend answered, by context.", ["context"], buckets=_FAST
)
RECOMMEND_STAGE = Histogram(
    "recommend_stage_seconds",
    "Time per stage (hydrate, engine), by context.",
    ["context", "stage"],
    buckets=_FAST,
)
RECOMMEND_CACHE = Counter(
    "recommend_cache_total",
    "Recommendation answers by cache tier: near (this process), hit (Redis), miss (engine).",
    ["result"],
)
NEAR_CACHE_INVALIDATIONS = Counter(
    "near_cache_invalidations_total", "Invalidation messages the near cache received."
)
RECOMMEND_FALLBACKS = Counter(
    "recommend_fallbacks_total",
    "Answers from memory because a dependency was slow or down.",
    ["reason"],
)
MODEL_INFO = Info("recommender_model", "The model this process serves.")
MODEL_AGE = Gauge(
    "recommender_model_age_seconds",
    "Seconds since the served champion was trained (0 without a model); refreshed every poll.",
)
MODEL_REFUSED = Counter(
    "model_artifacts_refused_total",
    "Model bundles refused (unsigned, wrongly signed, corrupt, of another format or feature "
    "semantics, or failing on a request); what was served keeps serving.",
)

IMPRESSIONS_WRITTEN = Counter("impressions_written_total", "Impressions stored.")
IMPRESSIONS_DROPPED = Counter(
    "impressions_dropped_total", "Impressions dropped because the write buffer was full."
)
IMPRESSIONS_PENDING = Gauge("impressions_pending", "Impressions waiting for their write.")
FEEDBACK = Counter(
    "feedback_total",
    "Feedback stored, by source (explicit, implicit) and join.",
    ["source", "join"],
)
