-- Records that could not be decoded or validated, with the reason and their source coordinates.
-- Insert columns in hub.records.decode.DEAD_LETTER_COLUMNS order. key and value are base64.
-- Placeholder filled by the migration runner: {db}.
CREATE TABLE IF NOT EXISTS {db}.dead_letters
(
    dead_time         DateTime64(3, 'UTC'),
    source_topic      LowCardinality(String),
    source_partition  Int32,
    source_offset     Int64,
    source_index      Int32,
    reason            String,
    key               String,
    value             String
)
ENGINE = MergeTree
ORDER BY (source_topic, source_partition, source_offset, source_index)
SETTINGS non_replicated_deduplication_window = 10000
