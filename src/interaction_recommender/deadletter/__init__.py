"""Dead letters: messages a consumer could not process after its retries. Each is kept in the
`dead_letters` table (for listing and replay) and published to `interaction_events_dlq`."""
