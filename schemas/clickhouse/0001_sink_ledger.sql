-- The sink's write-ahead ledger: one row per batch, written before the batch's rows.
-- A batch covers one topic partition's offsets [first_offset, last_offset]; its rows are
-- inserted with insert_deduplication_token = token. After a crash the last batch of each
-- partition is fetched again from Kafka and re-inserted with the same token, so the store
-- drops whatever part of it had already landed: nothing lost, nothing duplicated.
CREATE TABLE IF NOT EXISTS {db}.sink_ledger
(
    sink          LowCardinality(String),
    topic         LowCardinality(String),
    partition     UInt32,
    first_offset  UInt64,
    last_offset   UInt64,
    token         String,
    rows          UInt32,
    invalid       UInt32,
    written_at    DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = MergeTree
ORDER BY (sink, topic, partition, first_offset)
TTL toDateTime(written_at) + INTERVAL 30 DAY
SETTINGS non_replicated_deduplication_window = 10000
