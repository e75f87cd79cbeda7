"""The experiment event log on Kafka (``hub.experiments``): read it whole, append to one experiment.

The topic is the source of truth: every lifecycle step is an immutable event keyed by
experiment id, so all events of one experiment share a partition and keep their order.
"""

from __future__ import annotations

import time
from typing import Iterator

from hub.errors import HubError, RecoverableError
from hub.runtime.consume import read_to_end


def read_log(bootstrap: str, topic: str, timeout: float = 30.0) -> Iterator[tuple[int, int, bytes]]:
    """Every record of the topic up to its current end: (partition, offset, value)."""
    from kafka import KafkaConsumer, TopicPartition
    from kafka.errors import KafkaError

    try:
        consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                                 auto_offset_reset="earliest", max_poll_records=10_000)
    except KafkaError as exc:
        raise HubError(f"no Kafka broker answers at {bootstrap} (is the hub up?): {exc}") from None
    try:
        partitions = consumer.partitions_for_topic(topic) or set()
        if not partitions:
            return
        ends = consumer.end_offsets([TopicPartition(topic, p) for p in sorted(partitions)])
        for batch in read_to_end(consumer, ends, deadline=time.monotonic() + timeout,
                                 timed_out=lambda unread: RecoverableError(f"reading {topic} timed out")):
            for record in batch:
                yield record.partition, record.offset, record.value
    finally:
        consumer.close()


class LogWriter:
    """Appends events for one experiment and waits for the broker's acknowledgement."""

    def __init__(self, bootstrap: str, topic: str):
        from kafka import KafkaProducer
        from kafka.errors import KafkaError

        try:
            self._producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=0,
                                           retries=5, max_in_flight_requests_per_connection=1)
        except KafkaError as exc:
            raise HubError(f"no Kafka broker answers at {bootstrap} (is the hub up?): {exc}") from None
        self.topic = topic

    def append(self, experiment_id: str, values: list[bytes]) -> list[int]:
        """Append in order; returns the offsets. One in-flight request keeps the order on retries."""
        futures = [self._producer.send(self.topic, key=experiment_id.encode(), value=v) for v in values]
        self._producer.flush(timeout=30)
        offsets = []
        for future in futures:
            try:
                offsets.append(future.get(timeout=30).offset)
            except Exception as exc:
                raise HubError(f"the experiment log did not take the event: {exc}") from None
        return offsets

    def close(self) -> None:
        self._producer.close(timeout=5)
