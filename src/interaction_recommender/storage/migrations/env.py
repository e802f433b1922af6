"""Alembic environment. Migrations run only through storage.migrate, which hands over a live
connection (so they work inside the service's event loop and from the CLI alike)."""

from __future__ import annotations

from alembic import context

from interaction_recommender.storage.tables import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations with `recommender migrate`, not the alembic CLI")

context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",  # SQLite can only ALTER by copy
    transaction_per_migration=True,
)
with context.begin_transaction():
    context.run_migrations()
