-- Per-second aggregates of the raw tables, filled by materialized views on every insert, for the
-- dashboards' panels (hub.sql.aggregates compiles a panel to them). The raw tables stay for ad-hoc
-- SQL and drill-down.
--
-- requests_per_second: one row per second, experiment, phase, route, leg, gateway, backend, status
-- class (status / 100: 0 no response, 2, 3, 4, 5) and source: legs, failed legs (the abort judge's
-- definition, hub.abort.measure.REQUEST_FAILED_SQL) and the latencies as bucket counts of the
-- judge's quantile sketch (hub.abort.sketch: bucket ceil(ln(ms) / ln(gamma)), gamma = 1.01 / 0.99,
-- values at or below 0.001 ms in bucket -2^30). Bucket counts add up exactly whatever way rows are
-- split into seconds and parts, so a quantile read from them equals the same quantile computed
-- from the raw rows' buckets (the element at rank floor(q * (n - 1))), within 1 % of the raw value.
--
-- shadow_pairs_per_second: pairs per second, experiment, phase, route, gateway, shadow backend,
-- outcome, noise and source. spans_per_second: spans per second, experiment, phase, service and
-- status code, with their durations (ms) as sketch buckets.
--
-- Like the raw tables, each keeps the deduplication window of the sink's retried inserts: an insert
-- the raw table drops as a repeat (same insert_deduplication_token, or the same rows) is dropped
-- here too, when the insert sets deduplicate_blocks_in_dependent_materialized_views = 1 as the
-- hub's store client does (hub.storage.client.Store.insert); without it the view counts a retried
-- block again.
--
-- A store made before this migration gets the rows already stored copied in (once: only while the
-- aggregate is empty), before the view starts to count new inserts. Every TTL is the raw table's
-- (HUB_TTL_DAYS, computed as in 0014).

CREATE TABLE IF NOT EXISTS {db}.requests_per_second
(
    second          DateTime('UTC'),
    experiment_id   LowCardinality(String),
    phase           LowCardinality(String),
    route           LowCardinality(String),
    leg             LowCardinality(String),
    gateway         LowCardinality(String),
    backend         LowCardinality(String),
    status_class    UInt8,
    source          LowCardinality(String),
    legs            SimpleAggregateFunction(sum, UInt64),
    failed_legs     SimpleAggregateFunction(sum, UInt64),
    latency_buckets SimpleAggregateFunction(sumMap, Tuple(Array(Int32), Array(UInt64)))
)
ENGINE = AggregatingMergeTree
PARTITION BY toDate(second)
ORDER BY (experiment_id, second, route, leg, gateway, backend, status_class, source, phase)
TTL toDateTime(least(toInt64(toUnixTimestamp(second))
                     + toUInt32OrZero(extract('{ttl_clause}', 'INTERVAL ([0-9]+) DAY')) * 86400
                     + (toUInt32OrZero(extract('{ttl_clause}', 'INTERVAL ([0-9]+) DAY')) = 0) * 4294967295,
                     4294967295), 'UTC')
SETTINGS non_replicated_deduplication_window = 10000;

INSERT INTO {db}.requests_per_second
SELECT toDateTime(event_time, 'UTC') AS second, experiment_id, phase, route, leg, gateway, backend,
       toUInt8(least(intDiv(status, 100), 9)) AS status_class, source,
       count() AS legs, countIf(status >= 500 OR status = 0 OR error != '') AS failed_legs,
       sumMap([if(toFloat64(latency_ms) <= 0.001, toInt32(-1073741824),
                  toInt32(ceil(log(toFloat64(latency_ms)) / 0.020000666706669435)))], [toUInt64(1)]) AS latency_buckets
FROM {db}.requests
WHERE (SELECT count() FROM {db}.requests_per_second) = 0
GROUP BY second, experiment_id, phase, route, leg, gateway, backend, status_class, source;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.requests_per_second_mv TO {db}.requests_per_second AS
SELECT toDateTime(event_time, 'UTC') AS second, experiment_id, phase, route, leg, gateway, backend,
       toUInt8(least(intDiv(status, 100), 9)) AS status_class, source,
       count() AS legs, countIf(status >= 500 OR status = 0 OR error != '') AS failed_legs,
       sumMap([if(toFloat64(latency_ms) <= 0.001, toInt32(-1073741824),
                  toInt32(ceil(log(toFloat64(latency_ms)) / 0.020000666706669435)))], [toUInt64(1)]) AS latency_buckets
FROM {db}.requests
GROUP BY second, experiment_id, phase, route, leg, gateway, backend, status_class, source;

CREATE TABLE IF NOT EXISTS {db}.shadow_pairs_per_second
(
    second          DateTime('UTC'),
    experiment_id   LowCardinality(String),
    phase           LowCardinality(String),
    route           LowCardinality(String),
    gateway         LowCardinality(String),
    shadow_backend  LowCardinality(String),
    outcome         LowCardinality(String),
    noise           Bool,
    source          LowCardinality(String),
    pair_count      SimpleAggregateFunction(sum, UInt64)
)
ENGINE = AggregatingMergeTree
PARTITION BY toDate(second)
ORDER BY (experiment_id, second, route, outcome, noise, gateway, shadow_backend, source, phase)
TTL toDateTime(least(toInt64(toUnixTimestamp(second))
                     + toUInt32OrZero(extract('{ttl_clause}', 'INTERVAL ([0-9]+) DAY')) * 86400
                     + (toUInt32OrZero(extract('{ttl_clause}', 'INTERVAL ([0-9]+) DAY')) = 0) * 4294967295,
                     4294967295), 'UTC')
SETTINGS non_replicated_deduplication_window = 10000;

INSERT INTO {db}.shadow_pairs_per_second
SELECT toDateTime(event_time, 'UTC') AS second, experiment_id, phase, route, gateway, shadow_backend, outcome, noise,
       source, count() AS pair_count
FROM {db}.shadow_pairs
WHERE (SELECT count() FROM {db}.shadow_pairs_per_second) = 0
GROUP BY second, experiment_id, phase, route, gateway, shadow_backend, outcome, noise, source;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.shadow_pairs_per_second_mv TO {db}.shadow_pairs_per_second AS
SELECT toDateTime(event_time, 'UTC') AS second, experiment_id, phase, route, gateway, shadow_backend, outcome, noise,
       source, count() AS pair_count
FROM {db}.shadow_pairs
GROUP BY second, experiment_id, phase, route, gateway, shadow_backend, outcome, noise, source;

CREATE TABLE IF NOT EXISTS {db}.spans_per_second
(
    second           DateTime('UTC'),
    ExperimentId     LowCardinality(String),
    ExperimentPhase  LowCardinality(String),
    ServiceName      LowCardinality(String),
    StatusCode       LowCardinality(String),
    span_count       SimpleAggregateFunction(sum, UInt64),
    duration_buckets SimpleAggregateFunction(sumMap, Tuple(Array(Int32), Array(UInt64)))
)
ENGINE = AggregatingMergeTree
PARTITION BY toDate(second)
ORDER BY (ExperimentId, second, ServiceName, StatusCode, ExperimentPhase)
TTL toDateTime(least(toInt64(toUnixTimestamp(second))
                     + toUInt32OrZero(extract('{ttl_clause}', 'INTERVAL ([0-9]+) DAY')) * 86400
                     + (toUInt32OrZero(extract('{ttl_clause}', 'INTERVAL ([0-9]+) DAY')) = 0) * 4294967295,
                     4294967295), 'UTC')
SETTINGS non_replicated_deduplication_window = 10000;

INSERT INTO {db}.spans_per_second
SELECT toDateTime(Timestamp, 'UTC') AS second, ExperimentId, ExperimentPhase, ServiceName, StatusCode, count() AS span_count,
       sumMap([if(Duration / 1e6 <= 0.001, toInt32(-1073741824),
                  toInt32(ceil(log(Duration / 1e6) / 0.020000666706669435)))], [toUInt64(1)]) AS duration_buckets
FROM {db}.otel_traces
WHERE (SELECT count() FROM {db}.spans_per_second) = 0
GROUP BY second, ExperimentId, ExperimentPhase, ServiceName, StatusCode;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.spans_per_second_mv TO {db}.spans_per_second AS
SELECT toDateTime(Timestamp, 'UTC') AS second, ExperimentId, ExperimentPhase, ServiceName, StatusCode, count() AS span_count,
       sumMap([if(Duration / 1e6 <= 0.001, toInt32(-1073741824),
                  toInt32(ceil(log(Duration / 1e6) / 0.020000666706669435)))], [toUInt64(1)]) AS duration_buckets
FROM {db}.otel_traces
GROUP BY second, ExperimentId, ExperimentPhase, ServiceName, StatusCode
