"""Honest health: real, time-bounded probes per component; `disabled` for what is not in use."""

from interaction_recommender.health.probes import ComponentHealth, HealthChecker

__all__ = ["ComponentHealth", "HealthChecker"]
