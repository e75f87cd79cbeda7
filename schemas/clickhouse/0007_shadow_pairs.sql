-- One row per compared request: the primary and shadow legs of a shadowed request, paired
-- (record type dev.gamedayhub.shadow.pair.v1 on hub.pairs, decoded by hub.shadow.records.decode_pairs).
-- Insert columns in hub.shadow.records.PAIR_COLUMNS order; ingest_time is left to its default.
-- pair_id is the same for every publication of one request's pair (uuid5 of gateway and correlation id).
CREATE TABLE IF NOT EXISTS {db}.shadow_pairs
(
    pair_id             UUID,
    event_time          DateTime64(3, 'UTC'),
    ingest_time         DateTime64(3) DEFAULT now64(3),
    experiment_id       LowCardinality(String),
    phase               LowCardinality(String),
    gateway             LowCardinality(String),
    correlation_id      String,
    route               LowCardinality(String),
    method              LowCardinality(String),
    primary_backend     LowCardinality(String),
    shadow_backend      LowCardinality(String),
    secondary_backend   LowCardinality(String),
    primary_status      UInt16,
    shadow_status       UInt16,
    secondary_status    UInt16,
    status_match        Bool,
    body_match          Bool,
    latency_primary_ms  Float32,
    latency_shadow_ms   Float32,
    latency_diff_ms     Float32,
    outcome             LowCardinality(String),
    noise               Bool,
    differing_fields    Array(String),
    noise_fields        Array(String),
    shadow_error        String,
    source              LowCardinality(String)
)
ENGINE = MergeTree
PARTITION BY toDate(event_time)
ORDER BY (experiment_id, route, outcome, event_time)
{ttl_clause}
SETTINGS non_replicated_deduplication_window = 10000
