-- TTL expressions that cannot wrap around. A TTL of the form toDateTime(t) + INTERVAL N DAY is a
-- DateTime, seconds in a UInt32 (up to 2106-02-07 06:28:15): for a time near or beyond that limit
-- (DateTime64 columns hold times up to 2299, or 2262 at nanosecond precision) toDateTime and the
-- sum wrap around to the 1970s and the row is dropped by the next merge, right after it was
-- stored. Each TTL below is computed in Int64 seconds from the column's own time, clamped to
-- [1970-01-01, 2106-02-07 06:28:15]: a row dated too far ahead expires in 2106 instead. (The
-- OpenTelemetry tables' second-precision event_time copies are made with toDateTime and wrap
-- already, so their TTL reads the DateTime64(9) time itself; the trace-id lookup's view clamps the
-- times it keeps.)
--
-- N is HUB_TTL_DAYS, as the {ttl_clause} placeholder renders it ("TTL ... + INTERVAL N DAY"; empty
-- when HUB_TTL_DAYS is 0, and then every row's TTL is 2106-02-07 06:28:15, which keeps it for good).
-- The sink ledger keeps its fixed 30 days.

ALTER TABLE {db}.sink_ledger MODIFY TTL
    toDateTime(least(greatest(intDiv(toUnixTimestamp64Milli(written_at), 1000), 0) + 30 * 86400, 4294967295), 'UTC');

ALTER TABLE {db}.requests MODIFY TTL
    toDateTime(least(greatest(intDiv(toUnixTimestamp64Milli(event_time), 1000), 0)
                     + toUInt32OrZero(extract('{ttl_clause}', 'INTERVAL ([0-9]+) DAY')) * 86400
                     + (toUInt32OrZero(extract('{ttl_clause}', 'INTERVAL ([0-9]+) DAY')) = 0) * 4294967295,
                     4294967295), 'UTC');

ALTER TABLE {db}.shadow_pairs MODIFY TTL
    toDateTime(least(greatest(intDiv(toUnixTimestamp64Milli(event_time), 1000), 0)
                     + toUInt32OrZero(extract('{ttl_clause}', 'INTERVAL ([0-9]+) DAY')) * 86400
                     + (toUInt32OrZero(extract('{ttl_clause}', 'INTERVAL ([0-9]+) DAY')) = 0) * 4294967295,
                     4294967295), 'UTC');

ALTER TABLE {db}.otel_traces MODIFY TTL
    toDateTime(least(greatest(intDiv(toUnixTimestamp64Nano(Timestamp), 1000000000), 0)
                     + toUInt32OrZero(extract('{ttl_clause}', 'INTERVAL ([0-9]+) DAY')) * 86400
                     + (toUInt32OrZero(extract('{ttl_clause}', 'INTERVAL ([0-9]+) DAY')) = 0) * 4294967295,
                     4294967295), 'UTC');

ALTER TABLE {db}.otel_traces_trace_id_ts MODIFY TTL
    toDateTime(least(greatest(toInt64(toUnixTimestamp(Start)), 0)
                     + toUInt32OrZero(extract('{ttl_clause}', 'INTERVAL ([0-9]+) DAY')) * 86400
                     + (toUInt32OrZero(extract('{ttl_clause}', 'INTERVAL ([0-9]+) DAY')) = 0) * 4294967295,
                     4294967295), 'UTC');

ALTER TABLE {db}.otel_logs MODIFY TTL
    toDateTime(least(greatest(intDiv(toUnixTimestamp64Nano(Timestamp), 1000000000), 0)
                     + toUInt32OrZero(extract('{ttl_clause}', 'INTERVAL ([0-9]+) DAY')) * 86400
                     + (toUInt32OrZero(extract('{ttl_clause}', 'INTERVAL ([0-9]+) DAY')) = 0) * 4294967295,
                     4294967295), 'UTC');

ALTER TABLE {db}.otel_metrics_gauge MODIFY TTL
    toDateTime(least(greatest(intDiv(toUnixTimestamp64Nano(TimeUnix), 1000000000), 0)
                     + toUInt32OrZero(extract('{ttl_clause}', 'INTERVAL ([0-9]+) DAY')) * 86400
                     + (toUInt32OrZero(extract('{ttl_clause}', 'INTERVAL ([0-9]+) DAY')) = 0) * 4294967295,
                     4294967295), 'UTC');

ALTER TABLE {db}.otel_metrics_sum MODIFY TTL
    toDateTime(least(greatest(intDiv(toUnixTimestamp64Nano(TimeUnix), 1000000000), 0)
                     + toUInt32OrZero(extract('{ttl_clause}', 'INTERVAL ([0-9]+) DAY')) * 86400
                     + (toUInt32OrZero(extract('{ttl_clause}', 'INTERVAL ([0-9]+) DAY')) = 0) * 4294967295,
                     4294967295), 'UTC');

ALTER TABLE {db}.otel_metrics_histogram MODIFY TTL
    toDateTime(least(greatest(intDiv(toUnixTimestamp64Nano(TimeUnix), 1000000000), 0)
                     + toUInt32OrZero(extract('{ttl_clause}', 'INTERVAL ([0-9]+) DAY')) * 86400
                     + (toUInt32OrZero(extract('{ttl_clause}', 'INTERVAL ([0-9]+) DAY')) = 0) * 4294967295,
                     4294967295), 'UTC');

ALTER TABLE {db}.otel_metrics_exponential_histogram MODIFY TTL
    toDateTime(least(greatest(intDiv(toUnixTimestamp64Nano(TimeUnix), 1000000000), 0)
                     + toUInt32OrZero(extract('{ttl_clause}', 'INTERVAL ([0-9]+) DAY')) * 86400
                     + (toUInt32OrZero(extract('{ttl_clause}', 'INTERVAL ([0-9]+) DAY')) = 0) * 4294967295,
                     4294967295), 'UTC');

ALTER TABLE {db}.otel_metrics_summary MODIFY TTL
    toDateTime(least(greatest(intDiv(toUnixTimestamp64Nano(TimeUnix), 1000000000), 0)
                     + toUInt32OrZero(extract('{ttl_clause}', 'INTERVAL ([0-9]+) DAY')) * 86400
                     + (toUInt32OrZero(extract('{ttl_clause}', 'INTERVAL ([0-9]+) DAY')) = 0) * 4294967295,
                     4294967295), 'UTC');

ALTER TABLE {db}.otel_traces_trace_id_ts_mv MODIFY QUERY
SELECT
    TraceId,
    min(toDateTime(least(greatest(intDiv(toUnixTimestamp64Nano(Timestamp), 1000000000), 0), 4294967295), 'UTC')) AS Start,
    max(toDateTime(least(greatest(intDiv(toUnixTimestamp64Nano(Timestamp), 1000000000), 0), 4294967295), 'UTC')) AS End
FROM {db}.otel_traces
WHERE TraceId != ''
GROUP BY TraceId
