-- requests_per_5_seconds: requests_per_second (migration 0017) at a coarser grain, for the latency
-- quantile panels. One row per 5-second cell (second: the cell's first second, a multiple of 5 since
-- the epoch, as toStartOfInterval(..., INTERVAL 5 SECOND) and Grafana's $__timeInterval buckets
-- are), experiment, phase, route, leg, gateway, backend, status class and source: the same keys,
-- counts and sketch bucket counts as requests_per_second. A panel whose interval is a multiple of 5
-- seconds (or that has no time buckets, such as the routes table) merges the cells wholly inside
-- its time range from here and the seconds at its edges from requests_per_second
-- (hub.sql.aggregates): about half as many bucket entries as the per-second rows for the same hour.
--
-- Filled by a materialized view chained on requests_per_second: each block requests_per_second_mv
-- inserts there (one insert's legs already summed per second and key, far fewer rows than the legs)
-- is summed again by 5-second cell (the counts added, the sketch buckets by sumMap, the same keys),
-- so a cell holds exactly the sum of its seconds' rows. The deduplication follows the chain: with
-- deduplicate_blocks_in_dependent_materialized_views = 1, as the hub's store client sets
-- (hub.storage.client.Store.insert), an insert the raw table drops as a repeat (the same
-- insert_deduplication_token, or the same rows) is dropped here too, while distinct inserts whose
-- per-second rows happen to be equal are each counted.
--
-- A store made before this migration gets the per-second rows already stored (which 0017 copied
-- from the raw rows) summed into cells (once: only while the table is empty), before the view starts
-- to count new inserts. The TTL is the raw table's (HUB_TTL_DAYS, computed as in 0014).

CREATE TABLE IF NOT EXISTS {db}.requests_per_5_seconds
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

INSERT INTO {db}.requests_per_5_seconds
SELECT toStartOfInterval(second, INTERVAL 5 SECOND) AS cell, experiment_id, phase, route, leg, gateway, backend,
       status_class, source, sum(legs), sum(failed_legs), sumMap(latency_buckets)
FROM {db}.requests_per_second
WHERE (SELECT count() FROM {db}.requests_per_5_seconds) = 0
GROUP BY cell, experiment_id, phase, route, leg, gateway, backend, status_class, source;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.requests_per_5_seconds_mv TO {db}.requests_per_5_seconds AS
SELECT toStartOfInterval(requests_per_second.second, INTERVAL 5 SECOND) AS second, experiment_id, phase, route, leg,
       gateway, backend, status_class, source, sum(requests_per_second.legs) AS legs,
       sum(requests_per_second.failed_legs) AS failed_legs, sumMap(requests_per_second.latency_buckets) AS latency_buckets
FROM {db}.requests_per_second
GROUP BY second, experiment_id, phase, route, leg, gateway, backend, status_class, source
