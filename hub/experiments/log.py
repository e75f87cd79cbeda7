"""The experiment event log on Kafka (``hub.experiments``): read it whole, append to one experiment.

The topic is the source of truth: every lifecycle step is an immutable event keyed by
experiment id, so all events of one experiment share a partition and keep their order.
"""

from __future__ import annotations

import time
from typing import Iterator

from hub.errors import HubError, RecoverableError
from hub.runtime.consume import read_to_end


def read_log(bootstrap: str, topic: str, timeout: float = 30.0,
             positions: dict[int, int] | None = None) -> Iterator[tuple[int, int, bytes]]:
    """Every record of the topic up to its current end: (partition, offset, value).

    With ``positions`` (partition -> next offset to read, updated in place to the ends once they
    are read) only the records after an earlier read are read: a topic is read once, in steps.
    """
    from kafka import TopicPartition
    from kafka.errors import KafkaError

    from hub.runtime import clients

    try:
        consumer = clients.consumer(bootstrap, auto_offset_reset="earliest", max_poll_records=10_000)
    except KafkaError as exc:
        raise HubError(f"no Kafka broker answers at {bootstrap} (is the hub up?): {exc}") from None
    try:
        partitions = consumer.partitions_for_topic(topic) or set()
        if not partitions:
            return
        ends = consumer.end_offsets([TopicPartition(topic, p) for p in sorted(partitions)])
        starts = {tp: positions.get(tp.partition) for tp in ends} if positions is not None else None
        for batch in read_to_end(consumer, ends, starts, deadline=time.monotonic() + timeout,
                                 timed_out=lambda unread: RecoverableError(f"reading {topic} timed out")):
            for record in batch:
                yield record.partition, record.offset, record.value
        if positions is not None:
            positions.update({tp.partition: end for tp, end in ends.items()})
    finally:
        consumer.close()


class LogWriter:
    """Appends events for one experiment and waits for the broker's acknowledgement."""

    def __init__(self, bootstrap: str, topic: str):
        from kafka.errors import KafkaError

        from hub.runtime import clients

        try:
            self._producer = clients.producer(bootstrap, acks="all", linger_ms=0, retries=5,
                                              max_in_flight_requests_per_connection=1)
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
