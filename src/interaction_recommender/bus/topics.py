"""The platform's topic names (see docs/topics.md for each message schema)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Topics", "retry_topic"]

_RETRY = ".retry."


def retry_topic(topic: str, group: str) -> str:
    """Where a replay of a dead letter goes: read only by ``group``, the consumer that failed, so
    the other groups of ``topic`` never see the message twice (docs/topics.md, replay). A
    message that failed again on its retry topic goes back to the same one."""
    suffix = f"{_RETRY}{group}"
    return topic if topic.endswith(suffix) else f"{topic}{suffix}"


@dataclass(frozen=True)
class Topics:
    """Real topic names, after the configured prefix."""

    interaction_events: str
    processed_features: str
    model_feedback: str
    interaction_events_dlq: str
    movie_catalog: str

    @classmethod
    def with_prefix(cls, prefix: str) -> Topics:
        return cls(
            interaction_events=f"{prefix}interaction_events",
            processed_features=f"{prefix}processed_features",
            model_feedback=f"{prefix}model_feedback",
            interaction_events_dlq=f"{prefix}interaction_events_dlq",
            movie_catalog=f"{prefix}movie_catalog",
        )

    def configs(self, retention_ms: int, groups: list[str]) -> dict[str, dict[str, str]]:
        """Each topic (the retry topic of each consumer group of `interaction_events` included)
        with the configuration it is created with (docs/topics.md, retention):
        `processed_features` is a state topic, compacted, so an erasure's tombstone removes the
        user's features from it; the others keep messages for ``retention_ms``."""
        kept = {"retention.ms": str(retention_ms)}
        retries = [retry_topic(self.interaction_events, group) for group in groups]
        return {
            topic: {"cleanup.policy": "compact"} if topic == self.processed_features else kept
            for topic in [*self.all(), *retries]
        }

    def all(self) -> list[str]:
        return [
            self.interaction_events,
            self.processed_features,
            self.model_feedback,
            self.interaction_events_dlq,
            self.movie_catalog,
        ]
