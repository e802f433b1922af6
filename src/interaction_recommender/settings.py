"""One settings class, read from the environment with the platform's names (docs/contract.md).

With nothing set, the service runs in the embedded mode: SQLite under ``DATA_DIR``, the in-process
bus and in-memory stores. Each real service is selected on its own by its variable.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

__all__ = ["Settings"]

_MIN_TOKEN_LENGTH = 16
MIN_SIGNING_KEY_LENGTH = 32
"""Characters of a model signing key (model/signing.py): 32 random ones are ~190 bits."""


class Settings(BaseSettings):
    """Every knob of the service. Environment variable = field name in upper case."""

    model_config = SettingsConfigDict(env_file=None, extra="ignore", case_sensitive=False)

    # --- Where things live -------------------------------------------------------------------
    data_dir: Path = Field(
        default=Path("var"),
        description="Embedded-mode state: the SQLite database and the default model path.",
    )
    database_url: str | None = Field(
        default=None,
        description="postgresql+asyncpg://... selects Postgres; unset = SQLite under DATA_DIR.",
    )
    database_schema: str | None = Field(
        default=None,
        pattern=r"^[a-z_][a-z0-9_]{0,62}$",
        description="Postgres schema to use (search_path); unset = the role's default.",
    )
    redis_url: str | None = Field(
        default=None, description="redis://... selects Redis; unset = in-memory stores."
    )
    enable_kafka: bool = Field(
        default=False,
        description="true = Kafka at KAFKA_BOOTSTRAP_SERVERS; false = in-process bus.",
    )
    kafka_bootstrap_servers: str = Field(
        default="localhost:9092",
        description="Kafka brokers, host:port[,host:port]; read only when ENABLE_KAFKA is true.",
    )
    kafka_topic_prefix: str = Field(
        default="", description="Prepended to every topic name (isolates tests and tenants)."
    )
    kafka_topic_partitions: int = Field(
        default=4, ge=1, le=1024, description="Partitions of each topic the service creates."
    )
    kafka_replication_factor: int = Field(
        default=1, ge=1, le=16, description="Replication factor of each topic the service creates."
    )
    kafka_request_timeout_ms: int = Field(
        default=5000, ge=100, description="Timeout of a Kafka request (producer, admin), in ms."
    )
    kafka_session_timeout_ms: int = Field(
        default=10_000, ge=1000, description="Consumer-group session timeout (failover time)."
    )
    erasure_sweep_after_s: float = Field(
        default=15.0,
        ge=0.0,
        le=600.0,
        description="An erasure deletes the user's rows once more this long after the request "
        "(writes that raced it: an impression buffered in another replica, a statement in "
        "flight). Keep it above DB_STATEMENT_TIMEOUT_MS and IMPRESSION_FLUSH_S.",
    )
    erasure_poll_s: float = Field(
        default=2.0,
        gt=0.0,
        le=60.0,
        description="How often each process looks for due erasure steps.",
    )
    erasure_max_backoff_s: float = Field(
        default=30.0,
        gt=0.0,
        le=600.0,
        description="Upper bound of the wait between retries of a failed erasure step.",
    )
    kafka_retention_ms: int = Field(
        default=7 * 86_400_000,
        ge=3_600_000,
        description="retention.ms of the topics the service creates (processed_features is "
        "compacted instead): how long an erased user's old messages can stay in Kafka.",
    )
    kafka_max_request_size: int = Field(
        default=1_048_576,
        ge=65_536,
        le=100 * 1024 * 1024,
        description="The producer's max_request_size, in bytes (the embedded bus applies it too). "
        "An event is refused at ingest when its message could not be dead-lettered within it: "
        "(this - 16 KiB of dead-letter envelope) x 3/4 (docs/topics.md). The brokers' "
        "message.max.bytes must be at least this.",
    )
    enable_consumers: bool = Field(
        default=True,
        description="Run the feature consumer inside `serve` (the platform's default).",
    )
    model_path: Path | None = Field(
        default=None, description="The model artifact; unset = DATA_DIR/models/recommender.pkl."
    )
    model_keep: int = Field(
        default=5,
        ge=0,
        le=1000,
        description="Earlier versions of each model name kept for rollback when training "
        "collects garbage (named versions and those an experiment uses are always kept).",
    )
    model_signing_keys: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Comma-separated HMAC keys of model bundles (32+ characters each): the first "
        "signs, every one verifies. Unset: a key generated once, in the database by `recommender "
        "migrate` (shared by every host), or under DATA_DIR in the embedded mode.",
    )

    # --- HTTP server ------------------------------------------------------------------------
    host: str = Field(
        default="127.0.0.1",
        description="Bind address of `serve` (the image sets 0.0.0.0); --host overrides it.",
    )
    port: int = Field(
        default=8000,
        ge=1,
        le=65535,
        description="Port of `serve` (compose publishes 8000 as 8090); --port overrides it.",
    )
    access_log: bool = Field(default=True, description="One structured log line per request.")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        default="INFO", description="Lowest level of log line written."
    )
    log_json: bool = Field(default=True, description="JSON logs (false: human-readable console).")
    graceful_shutdown_s: float = Field(
        default=20.0,
        ge=0,
        description="Seconds `serve` gives requests in flight at shutdown (whole seconds).",
    )

    # --- Security ---------------------------------------------------------------------------
    api_tokens: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Comma-separated bearer tokens; when set, every non-health route needs one.",
    )
    admin_token: str | None = Field(
        default=None, description="Bearer token for admin routes; unset = admin routes refuse."
    )
    restrict_docs_and_metrics: bool = Field(
        default=False,
        description="The API documentation (/api/v1/docs, openapi.json) and /metrics need the "
        "admin token (Prometheus scrapes with `authorization: credentials: ...`).",
    )

    # --- Database ---------------------------------------------------------------------------
    auto_migrate: bool | None = Field(
        default=None,
        description="Apply migrations at start; default: on for SQLite, off for Postgres "
        "(production runs `recommender migrate` as its own step).",
    )
    db_pool_size: int = Field(
        default=10,
        ge=1,
        le=200,
        description="Postgres connections kept per pool (also the ingest pool's maximum). "
        "SQLite always uses one.",
    )
    db_max_overflow: int = Field(
        default=5, ge=0, le=200, description="Postgres connections allowed beyond DB_POOL_SIZE."
    )
    db_pool_timeout_s: float = Field(
        default=2.0, gt=0, le=8, description="Wait for a pooled connection before answering 503."
    )
    db_connect_timeout_s: float = Field(
        default=3.0, gt=0, le=8, description="Seconds to open a Postgres connection."
    )
    db_statement_timeout_ms: int = Field(
        default=5000,
        ge=100,
        le=60_000,
        description="Postgres statement_timeout, in ms; on SQLite, the wait for a lock.",
    )

    # --- Ingestion and outbox ---------------------------------------------------------------
    max_event_body_bytes: int = Field(
        default=64 * 1024,
        ge=1024,
        description="Largest request body, in bytes, outside the .../batch routes; larger: 413.",
    )
    max_batch_body_bytes: int = Field(
        default=16 * 1024 * 1024,
        ge=1024,
        description="Largest request body, in bytes, of a route ending in /batch; larger: 413.",
    )
    ingest_group_max_batch: int = Field(
        default=500, ge=1, le=5000, description="Most single events committed together."
    )
    ingest_group_max_in_flight: int = Field(
        default=4, ge=1, le=64, description="Group-commit transactions running at once."
    )
    ingest_queue_max: int = Field(
        default=10_000,
        ge=1,
        le=1_000_000,
        description="Single events waiting for a group commit; past it, 503 with Retry-After.",
    )
    relay_batch_size: int = Field(
        default=500, ge=1, le=10_000, description="Most outbox rows published per relay round."
    )
    relay_idle_poll_s: float = Field(
        default=0.2,
        gt=0,
        le=10,
        description="Seconds before an idle relay looks at the outbox again (a commit wakes it "
        "sooner).",
    )
    relay_linger_s: float = Field(
        default=0.02,
        ge=0,
        le=1,
        description="After a commit wakes the relay, gather for this long.",
    )
    relay_max_backoff_s: float = Field(
        default=10.0, gt=0, description="Longest wait, in seconds, between publish retries."
    )
    outbox_retention_s: float = Field(
        default=24 * 3600.0, ge=0, description="How long sent outbox rows are kept before deletion."
    )
    outbox_degraded_age_s: float = Field(
        default=60.0,
        gt=0,
        description="Outbox health is degraded when the oldest unsent row is older.",
    )

    # --- Features --------------------------------------------------------------------------
    redis_key_prefix: str = Field(
        default="", max_length=100, description="Prepended to every Redis key (tests, tenants)."
    )
    features_ttl_s: int = Field(
        default=30 * 24 * 3600,
        ge=60,
        description="Redis TTL of a user's features (renewed on write).",
    )
    features_consumer_group: str = Field(
        default="interaction-recommender-features",
        min_length=1,
        description="Group of the consumer that updates user features from events.",
    )
    catalog_consumer_group: str = Field(
        default="interaction-recommender-catalog",
        min_length=1,
        description="Group of the consumer that creates catalog placeholders from events.",
    )
    features_attempts: int = Field(
        default=3, ge=1, le=20, description="Tries of a failing message before it is dead-lettered."
    )
    consumer_stuck_after_s: float = Field(
        default=60.0, gt=0, description="A consumer with waiting messages and no progress is stuck."
    )

    # --- Training ----------------------------------------------------------------------------
    label_completed: float = Field(default=1.0, description="Label of a completed view.")
    label_rewatch: float = Field(default=0.5, description="Added per extra view (rewatch).")
    label_partial: float = Field(
        default=0.8, description="Times the progress of an unfinished movie."
    )
    label_abandoned: float = Field(default=-0.3, description="A movie left below 25%: negative.")
    label_rating_base: float = Field(default=1.0, description="Every rating (the user watched it).")
    label_rating_slope: float = Field(default=0.25, description="Per star above (below) 3.")
    label_favorite: float = Field(default=1.0, description="A favorite added.")
    label_unfavorite: float = Field(default=-0.5, description="A favorite removed.")
    label_ignored_twice: float = Field(
        default=0.0,
        le=0.0,
        description="Training only: a movie shown twice and ignored (from the impression log); "
        "0 (the default) turns it off (docs/recommendations.md, training with impressions).",
    )
    ease_max_items: int = Field(
        default=5000, ge=0, description="EASE (dense items x items) up to this many movies."
    )
    train_threads: int = Field(
        default=1, ge=1, le=64, description="BLAS/ALS threads when training."
    )
    diversity: bool = Field(
        default=True,
        description="Deprecated: false turns the calibrated `home` re-ranking off "
        "(CALIBRATION_LAMBDA=0 says the same).",
    )
    calibration_lambda: float | None = Field(
        default=None,
        ge=0,
        le=1,
        description="λ of the calibrated `home` re-ranking (0: the ranker's order; 1: the "
        "genre distribution only); unset: the λ the model was trained with (/model/info).",
    )
    train_interval_s: float = Field(
        default=0,
        ge=0,
        description="Retrain from the stored events this often in `recommender worker` "
        "(0: never; training is then `recommender train`, e.g. from cron).",
    )

    # --- Serving ---------------------------------------------------------------------------
    recommend_max_k: int = Field(default=500, ge=1, le=10_000, description="Larger k is clamped.")
    recommend_budget_s: float = Field(
        default=0.3, gt=0, le=5, description="Redis/DB wait before answering from memory."
    )
    near_cache_ttl_s: float = Field(
        default=2.0,
        ge=0,
        le=60,
        description="Seconds an API process answers a repeated recommendation from its own "
        "memory (no Redis round trip); an answer that starts later than this after new features "
        "were stored reflects them. 0 turns the near cache off; unused without Redis.",
    )
    near_cache_max_entries: int = Field(
        default=100_000, ge=1, description="Lists the near cache holds (least recent dropped)."
    )
    recommend_cache_ttl_s: int = Field(
        default=3600,
        ge=1,
        description="Seconds a user's cached recommendation lists live in Redis (renewed on "
        "write); unused without Redis.",
    )
    model_poll_s: float = Field(
        default=5.0,
        gt=0,
        le=60,
        description="How often every process reads the model store's names (and MODEL_PATH).",
    )

    # --- Feedback loop (docs/feedback.md) ---------------------------------------------------
    impression_logging: bool = Field(
        default=True, description="Log every recommendation response as an impression."
    )
    impression_buffer: int = Field(
        default=50_000,
        ge=100,
        description="Impressions waiting for their write; beyond it new ones are dropped and "
        "counted (impressions_dropped_total), so that a down database never grows memory.",
    )
    impression_batch: int = Field(
        default=1000,
        ge=1,
        le=50_000,
        description="Most impressions per INSERT; a full batch wakes the writer at once.",
    )
    impression_flush_s: float = Field(
        default=0.5, gt=0, le=60, description="Seconds between writes of buffered impressions."
    )
    feedback_retention_days: int = Field(
        default=90, ge=1, description="Impressions and feedback older than this are deleted."
    )
    feedback_join_window_s: int = Field(
        default=3600,
        ge=1,
        description="Feedback without a recommendationId joins the user's latest impression of "
        "the same list shown at most this long before it.",
    )
    attribution_window_s: int = Field(
        default=86_400,
        ge=1,
        description="A watch, rating or favorite of a recommended movie this long after the "
        "impression counts as implicit feedback for it (attributed once).",
    )
    attribution_consumer_group: str = Field(
        default="interaction-recommender-attribution",
        min_length=1,
        description="Group of the consumer that attributes events to impressions (implicit "
        "feedback).",
    )

    # --- Catalog ---------------------------------------------------------------------------
    catalog_poll_s: float = Field(
        default=2.0, gt=0, le=8, description="How often each process reloads changed movies."
    )
    movie_service_url: str | None = Field(
        default=None, description="Base URL of the movie service, for `recommender catalog sync`."
    )
    movie_service_token: str | None = Field(
        default=None, description="Bearer token for the movie service (anonymous: PUBLIC only)."
    )
    movie_service_page_size: int = Field(
        default=100, ge=1, le=1000, description="Movies asked for per page (the size parameter)."
    )
    movie_service_attempts: int = Field(
        default=3, ge=1, le=10, description="Tries per page before a sync is incomplete."
    )
    movie_service_timeout_s: float = Field(
        default=10.0, gt=0, le=120, description="Timeout of one movie-service request, in seconds."
    )

    # --- Demo world -------------------------------------------------------------------------
    demo_data: bool | None = Field(
        default=None,
        description="Load the synthetic demo world at first start when the database is empty. "
        "Default: on in the embedded mode, always off when DATABASE_URL is set.",
    )
    demo_seed: int = Field(default=7, description="Seed of the demo world (same seed, same world).")
    demo_users: int = Field(
        default=3000, ge=1, le=1_000_000, description="Users in the demo world."
    )
    demo_movies: int = Field(
        default=400, ge=1, le=1_000_000, description="Movies in the demo world."
    )

    # --- Health -----------------------------------------------------------------------------
    health_probe_timeout_s: float = Field(
        default=1.0,
        gt=0,
        le=5,
        description="Seconds each health probe and the readiness check may take; also the Redis "
        "client's connect and socket timeout.",
    )

    @field_validator("api_tokens", "model_signing_keys", mode="before")
    @classmethod
    def _split_tokens(cls, value: object) -> object:
        if isinstance(value, str):
            return [token.strip() for token in value.split(",") if token.strip()]
        return value

    @field_validator("api_tokens")
    @classmethod
    def _tokens_long_enough(cls, tokens: list[str]) -> list[str]:
        for token in tokens:
            if len(token) < _MIN_TOKEN_LENGTH:
                raise ValueError(f"every API token needs at least {_MIN_TOKEN_LENGTH} characters")
        return tokens

    @field_validator("model_signing_keys")
    @classmethod
    def _signing_keys_long_enough(cls, keys: list[str]) -> list[str]:
        if any(len(key) < MIN_SIGNING_KEY_LENGTH for key in keys):
            raise ValueError(
                f"every MODEL_SIGNING_KEYS key needs at least {MIN_SIGNING_KEY_LENGTH} characters"
            )
        return keys

    @field_validator("admin_token")
    @classmethod
    def _admin_token_long_enough(cls, token: str | None) -> str | None:
        if token is not None and token.strip() == "":
            return None
        if token is not None and len(token) < _MIN_TOKEN_LENGTH:
            raise ValueError(f"ADMIN_TOKEN needs at least {_MIN_TOKEN_LENGTH} characters")
        return token

    @field_validator("database_url")
    @classmethod
    def _async_driver(cls, url: str | None) -> str | None:
        """Accept the usual spellings but always run on the async drivers."""
        if url is None or url.strip() == "":
            return None
        url = url.strip()
        for plain in ("postgresql://", "postgres://", "postgresql+psycopg2://"):
            if url.startswith(plain):
                return "postgresql+asyncpg://" + url[len(plain) :]
        if url.startswith("sqlite://"):
            return "sqlite+aiosqlite://" + url[len("sqlite://") :]
        if not url.startswith(("postgresql+asyncpg://", "sqlite+aiosqlite://")):
            raise ValueError("DATABASE_URL must be a postgresql:// or sqlite:// URL")
        return url

    @field_validator("redis_url")
    @classmethod
    def _empty_redis_is_unset(cls, url: str | None) -> str | None:
        return None if url is None or url.strip() == "" else url.strip()

    @model_validator(mode="after")
    def _batch_limit_covers_single_event(self) -> Settings:
        if self.max_batch_body_bytes < self.max_event_body_bytes:
            raise ValueError("MAX_BATCH_BODY_BYTES must be at least MAX_EVENT_BODY_BYTES")
        return self

    # --- Derived values ---------------------------------------------------------------------
    @property
    def embedded_database(self) -> bool:
        return self.database_url is None

    @property
    def effective_database_url(self) -> str:
        if self.database_url is not None:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'recommender.db').resolve()}"

    @property
    def is_sqlite(self) -> bool:
        return self.effective_database_url.startswith("sqlite")

    @property
    def effective_model_path(self) -> Path:
        return self.model_path or self.data_dir / "models" / "recommender.pkl"

    @property
    def load_demo_world(self) -> bool:
        return self.database_url is None and self.demo_data is not False

    @property
    def migrate_on_start(self) -> bool:
        return self.is_sqlite if self.auto_migrate is None else self.auto_migrate
