"""Event ingestion: wire schemas, the idempotent ingest service, its SQL, its routes."""

from interaction_recommender.events.messages import EventMessage, decode_event_message
from interaction_recommender.events.schemas import EventType

__all__ = ["EventMessage", "EventType", "decode_event_message"]
