"""The movie catalog: merge-upserts, sync from the movie service, placeholders from events, the
in-memory copy every process keeps fresh, and change messages for everyone else."""
