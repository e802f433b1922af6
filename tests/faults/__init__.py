"""The fault-injection suite: each test runs the service against a Postgres cluster, a Redis
server and a Kafka-protocol broker of its own, breaks one of them under load, and ends in a
reconciliation (tests/faults/reconcile.py)."""
