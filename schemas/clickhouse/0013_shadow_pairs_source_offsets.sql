-- Where each stored shadow pair was read from on the pairs topic (partition and offset; -1 for rows
-- stored before this migration), and a bloom filter on pair_id for the look-up that uses them.
-- The pairs sink (hub.shadow.dedupe) drops a pair whose pair_id is already stored from another
-- record of the topic, so that shadow_pairs holds one row per pair_id even when a pair is published
-- again (a worker that crashed pairs its last stored chunk of legs again on restart). Rows stored
-- from the chunk's own records do not count, so a chunk written again after a crash is the same
-- rows again and the insert deduplication token still drops it.
ALTER TABLE {db}.shadow_pairs ADD COLUMN IF NOT EXISTS source_partition Int32 DEFAULT -1;
ALTER TABLE {db}.shadow_pairs ADD COLUMN IF NOT EXISTS source_offset Int64 DEFAULT -1;
ALTER TABLE {db}.shadow_pairs ADD INDEX IF NOT EXISTS pair_id_bloom pair_id TYPE bloom_filter(0.001) GRANULARITY 1
