"""Message bus plumbing: Kafka in production, an in-process log in the embedded mode.

Both implement ``Bus``; nothing above this package knows which one it talks to.
"""

from interaction_recommender.bus.base import Bus, BusError, Message
from interaction_recommender.bus.factory import build_bus
from interaction_recommender.bus.topics import Topics

__all__ = ["Bus", "BusError", "Message", "Topics", "build_bus"]
