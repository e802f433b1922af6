"""Per-user operations that span every stage (erasure)."""
