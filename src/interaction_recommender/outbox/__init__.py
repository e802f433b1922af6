"""Transactional outbox: messages written with the data they announce, published after commit."""

from interaction_recommender.outbox.relay import OutboxRelay, RelayState
from interaction_recommender.outbox.repository import OutboxMessage, OutboxRepository

__all__ = ["OutboxMessage", "OutboxRelay", "OutboxRepository", "RelayState"]
