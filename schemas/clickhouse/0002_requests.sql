-- One row per gateway request leg (record type dev.gamedayhub.request.leg.v1).
-- Insert columns in hub.records.request_leg.REQUEST_COLUMNS order; ingest_time is left to its default.
-- Placeholders filled by the migration runner: {db}, {ttl_clause} (empty, or a TTL on event_time).
-- non_replicated_deduplication_window: the sink sets insert_deduplication_token per offset range.
CREATE TABLE IF NOT EXISTS {db}.requests
(
    event_id        UUID,
    event_time      DateTime64(3, 'UTC'),
    ingest_time     DateTime64(3) DEFAULT now64(3),
    experiment_id   LowCardinality(String),
    phase           LowCardinality(String),
    correlation_id  String,
    leg             LowCardinality(String),
    gateway         LowCardinality(String),
    route           LowCardinality(String),
    method          LowCardinality(String),
    backend         LowCardinality(String),
    status          UInt16,
    latency_ms      Float32,
    request_bytes   UInt32,
    response_bytes  UInt32,
    response_hash   String,
    error           String,
    source          LowCardinality(String)
)
ENGINE = MergeTree
PARTITION BY toDate(event_time)
ORDER BY (experiment_id, route, leg, event_time)
{ttl_clause}
SETTINGS non_replicated_deduplication_window = 10000
