"""Reads an exact offset range of one partition, outside any consumer group (used by sink recovery)."""

from __future__ import annotations

import time

from hub.errors import RecoverableError
from hub.records.decode import RawMessage
from hub.runtime.consume import read_to_end


class KafkaRangeFetcher:
    """Fetches offsets ``[first, last]`` of a partition with a group-less kafka-python consumer."""

    def __init__(self, bootstrap: str, timeout: float = 30.0):
        self.bootstrap = bootstrap
        self.timeout = timeout
        self._consumer = None

    def _client(self):
        if self._consumer is None:
            from hub.runtime import clients

            self._consumer = clients.consumer(self.bootstrap, auto_offset_reset="earliest", max_poll_records=5000)
        return self._consumer

    def fetch(self, topic: str, partition: int, first: int, last: int) -> list[RawMessage]:
        from kafka import TopicPartition

        consumer = self._client()
        tp = TopicPartition(topic, partition)
        consumer.assign([tp])
        beginning = consumer.beginning_offsets([tp])[tp]
        if beginning > first:
            return []
        out: list[RawMessage] = []

        def timed_out(unread: dict) -> RecoverableError:
            return RecoverableError(f"fetching {topic}[{partition}] offsets {first}-{last} timed out")

        for records in read_to_end(consumer, {tp: last + 1}, {tp: first}, deadline=time.monotonic() + self.timeout,
                                   timed_out=timed_out):
            out.extend(RawMessage(r.topic, r.partition, r.offset, r.key, r.value, r.timestamp) for r in records)
        return out

    def close(self) -> None:
        if self._consumer is not None:
            self._consumer.close()
            self._consumer = None
