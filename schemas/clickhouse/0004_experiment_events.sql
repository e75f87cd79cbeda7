-- One row per experiment lifecycle event (topic hub.experiments), the projection of the event store.
-- Insert columns in hub.experiments.events.EVENT_COLUMNS order. payload is the whole event as JSON.
-- Placeholder filled by the migration runner: {db}. No TTL: the experiment log is never deleted.
-- non_replicated_deduplication_window: the sink sets insert_deduplication_token per offset range.
CREATE TABLE IF NOT EXISTS {db}.experiment_events
(
    experiment_id   String,
    sequence        UInt32,
    event_id        UUID,
    kind            LowCardinality(String),
    time            DateTime64(3, 'UTC'),
    actor           String,
    phase           LowCardinality(String),
    payload         String
)
ENGINE = MergeTree
ORDER BY (experiment_id, sequence)
SETTINGS non_replicated_deduplication_window = 10000
