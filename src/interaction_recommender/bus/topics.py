"""The platform's topic names (see docs/topics.md for each message schema)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Topics"]


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

    def configs(self, retention_ms: int) -> dict[str, dict[str, str]]:
        """Each topic with the configuration it is created with (docs/topics.md, retention):
        `processed_features` is a state topic, compacted, so an erasure's tombstone removes the
        user's features from it; the others keep messages for ``retention_ms``."""
        kept = {"retention.ms": str(retention_ms)}
        return {
            topic: {"cleanup.policy": "compact"} if topic == self.processed_features else kept
            for topic in self.all()
        }

    def all(self) -> list[str]:
        return [
            self.interaction_events,
            self.processed_features,
            self.model_feedback,
            self.interaction_events_dlq,
            self.movie_catalog,
        ]
