"""The feedback loop: impressions of every answer, feedback joined to them, online metrics
(docs/feedback.md)."""
