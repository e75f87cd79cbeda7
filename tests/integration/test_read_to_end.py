"""``hub.runtime.consume.read_to_end`` against the real broker: exact ranges, records written after
the end left out, and the experiment log and the sinks' range fetcher reading through it."""

from __future__ import annotations

import time

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from hub.errors import RecoverableError
from hub.experiments.log import read_log
from hub.runtime.consume import read_to_end
from hub.runtime.fetch import KafkaRangeFetcher


def produce(bootstrap: str, topic: str, values_by_partition: dict[int, list[bytes]]) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap)
    for partition, values in values_by_partition.items():
        for value in values:
            producer.send(topic, value=value, partition=partition)
    producer.flush()
    producer.close()


def consumer_for(bootstrap: str) -> KafkaConsumer:
    return KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                         auto_offset_reset="earliest", max_poll_records=3)


def test_ranges_are_read_exactly_and_later_records_are_left_out(kafka_bootstrap, make_topic):
    topic = make_topic(partitions=2)
    produce(kafka_bootstrap, topic, {0: [b"a%d" % i for i in range(10)], 1: [b"b%d" % i for i in range(4)]})
    p0, p1 = TopicPartition(topic, 0), TopicPartition(topic, 1)
    consumer = consumer_for(kafka_bootstrap)
    try:
        ends = consumer.end_offsets([p0, p1])
        produce(kafka_bootstrap, topic, {0: [b"late"], 1: [b"late"]})  # after the ends were taken
        got = [(r.partition, r.offset, r.value) for batch in read_to_end(consumer, ends) for r in batch]
        assert sorted(got) == [(0, i, b"a%d" % i) for i in range(10)] + [(1, i, b"b%d" % i) for i in range(4)]
        for partition in (0, 1):  # each partition in offset order
            offsets = [o for p, o, _ in got if p == partition]
            assert offsets == sorted(offsets)
        # a middle range of one partition, from a start offset
        middle = [r.offset for batch in read_to_end(consumer, {p0: 7}, {p0: 3}) for r in batch]
        assert middle == [3, 4, 5, 6]
        # an empty range yields nothing and does not wait
        assert [r for batch in read_to_end(consumer, {p1: 2}, {p1: 2}) for r in batch] == []
        # a range past the partition's end is not reached: the deadline says so
        with pytest.raises(RecoverableError, match=r"unread .*\(11, 50\)"):
            for _ in read_to_end(consumer, {p0: 50}, {p0: 0}, deadline=time.monotonic() + 2,
                                 timed_out=lambda unread: RecoverableError(f"unread {sorted(unread.values())}")):
                pass
    finally:
        consumer.close()
    assert sorted((p, o) for p, o, _ in read_log(kafka_bootstrap, topic)) == \
        [(0, i) for i in range(11)] + [(1, i) for i in range(5)]
    fetcher = KafkaRangeFetcher(kafka_bootstrap, timeout=5)
    try:
        assert [m.value for m in fetcher.fetch(topic, 1, 2, 4)] == [b"b2", b"b3", b"late"]
    finally:
        fetcher.close()
