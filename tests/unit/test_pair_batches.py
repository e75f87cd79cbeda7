"""Stream pairs are published as CloudEvents batch records, one per pairs partition: every pair
stays on the partition its own key picks, and the pairs decoder reads back every pair."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from kafka.partitioner.default import DefaultPartitioner

from hub.records.decode import DecodedBatch, RawMessage
from hub.shadow.pairing import PairingAgent, batch_by_partition
from hub.shadow.records import decode_pairs

T0 = datetime(2026, 5, 1, tzinfo=timezone.utc)


class _Cluster:
    def __init__(self, partitions):
        self.partitions = set(partitions)

    def topics(self):
        return {"hub.pairs"}

    def partitions_for_topic(self, topic):
        return self.partitions

    def available_partitions_for_topic(self, topic):
        return self.partitions


def _rows(n):
    rows = []
    for i in range(n):
        for kind, backend in (("primary", "v1"), ("shadow", "v2")):
            rows.append((None, T0 + timedelta(milliseconds=i), "exp", "load", f"cid-{i}", kind, "gw", "/r", "GET",
                         backend, 200, 10.0, 0, 0, "aa" if kind == "primary" or i % 7 else "bb", "", "/src"))
    return rows


def test_each_pair_stays_on_the_partition_its_key_picks_and_decodes_back():
    records = PairingAgent(30.0).after_store("requests:hub.requests:0:0-999", DecodedBatch(_rows(500), []))
    assert len(records) == 500
    partitions = [0, 1, 2, 3, 4, 5]
    partitioner, cluster = DefaultPartitioner(), _Cluster(partitions)
    expected = {k: partitioner.partition("hub.pairs", k, k, v, v, cluster) for k, v in records}
    batches = batch_by_partition(records, partitions, max_bytes=20_000)
    assert len(batches) < len(records) / 5  # a few records, not one per pair
    seen = {}
    for offset, (key, value, partition) in enumerate(batches):
        assert len(value) <= 20_000
        assert expected[key] == partition
        decoded = decode_pairs([RawMessage("hub.pairs", partition, offset, key, value, 0)], 1_000_000)
        assert decoded.invalid == []
        for row in decoded.rows:
            cid = row[5].encode()
            assert cid not in seen, "each pair once"
            seen[cid] = partition
    assert seen == expected  # every pair, each on its own key's partition
    outcomes = {}
    for _, value, partition in batches:
        for row in decode_pairs([RawMessage("hub.pairs", partition, 0, b"k", value, 0)], 1_000_000).rows:
            outcomes[row[19]] = outcomes.get(row[19], 0) + 1
    assert outcomes == {"body_mismatch": 72, "match": 428}


def test_an_event_larger_than_the_bound_is_a_batch_of_its_own_and_unknown_partitions_send_as_is():
    records = [(b"a", b'{"x":1}'), (b"b", b'{"y":"' + b"z" * 100 + b'"}')]
    batches = batch_by_partition(records, [0], max_bytes=50)
    assert [(k, v) for k, v, _ in batches] == [(b"a", b'[{"x":1}]'), (b"b", b"[" + records[1][1] + b"]")]
    assert batch_by_partition(records, []) == records
