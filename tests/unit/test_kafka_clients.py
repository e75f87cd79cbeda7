"""hub.runtime.clients: the shared client configuration, the partitioner and the CloudEvents
batch packer used by both ``hub emit``'s bulk sends and the emitter SDK."""

from __future__ import annotations

import json

import pytest
from kafka.partitioner.default import murmur2 as kafka_murmur2

from hub import producer as bulk
from hub.runtime import clients
from hub.runtime.clients import BatchPacker, batch_value, partition_for


def test_producers_take_one_request_size_from_the_largest_record():
    class Settings:
        max_record_bytes = 4_000_000

    assert clients.producer_config("b:1", settings=Settings())["max_request_size"] == 4_000_000 + 64 * 1024
    assert clients.producer_config("b:1")["max_request_size"] == 1_000_000 + 64 * 1024  # HUB_MAX_RECORD_BYTES default
    assert clients.producer_config("b:1", max_record_bytes=100)["max_request_size"] == 1024 * 1024  # not below Kafka's
    config = clients.producer_config("b:1", client_id="x", acks=1, linger_ms=0, max_request_size=7)
    assert config == {"bootstrap_servers": "b:1", "client_id": "x", "max_request_size": 7, "acks": 1,
                      "linger_ms": 0, "enable_idempotence": False}


def test_consumers_are_outside_any_group_unless_told():
    config = clients.consumer_config("b:1", max_poll_records=5)
    assert config["group_id"] is None and config["enable_auto_commit"] is False
    assert config["max_poll_records"] == 5 and config["client_id"] == clients.CLIENT_ID


def test_keyed_events_go_where_kafkas_default_partitioner_puts_them():
    packer = BatchPacker([0, 1, 2, 3, 4], events=1)
    for i in range(500):
        key = f"request-{i}".encode()
        expected = (kafka_murmur2(key) & 0x7FFFFFFF) % 5
        assert packer.partition(key) == partition_for(key, 5) == expected
        assert packer.add(key, b"{}") == (expected, key, [b"{}"])
    assert [packer.partition(None) for _ in range(6)] == [0, 1, 2, 3, 4, 0]


def test_batches_are_full_at_the_event_count_or_before_the_byte_limit():
    packer = BatchPacker([0], events=3, max_bytes=2 + 3 * 10 + 2)  # "[" ... "]", commas: room for 3 of 10 bytes
    value = b'{"a":"12"}'
    assert len(value) == 10
    assert packer.add(b"k1", value) is None
    assert packer.add(b"k2", value) is None
    assert packer.add(b"k3", value) == (0, b"k1", [value] * 3)
    assert packer.add(b"k4", value) is None
    assert packer.add(b"k5", value + b" " * 20) == (0, b"k4", [value])  # would not fit: the batch goes first
    assert packer.flush() == [(0, b"k5", [value + b" " * 20])]
    assert packer.flush() == []
    assert json.loads(batch_value([value, value])) == [{"a": "12"}, {"a": "12"}]


@pytest.mark.parametrize("events_per_record", [1, 4])
def test_bulk_sends_pack_with_the_same_packer(events_per_record):
    records = [(None if i % 7 == 0 else f"k{i % 11}".encode(), json.dumps({"i": i}).encode()) for i in range(100)]
    packed = list(bulk._pack(iter(records), events_per_record, [0, 1, 2]))
    assert sum(events for *_, events in packed) == 100
    keyed = {key: partition_for(key, 3) for key, _ in records if key is not None}
    for partition, key, value, events in packed:
        values = [value] if events_per_record == 1 else json.loads(value)
        assert len(values) == events and events <= events_per_record
        if key is not None:
            assert keyed[key] == partition
    if events_per_record > 1:  # every event of a batch belongs to its partition
        for partition, key, value, _ in packed:
            assert all(keyed.get(k, partition) == partition for k, v in records if json.loads(v) in json.loads(value))
