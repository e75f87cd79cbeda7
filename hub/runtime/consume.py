"""Reading Kafka partitions outside any consumer group: "read a partition to its end", once.

The experiment log, ``hub replay``, the judge's rebuild of its windows and the sinks' recovery
all read fixed offset ranges with a group-less kafka-python consumer; ``read_to_end`` is the one
loop they share: seek each partition to its start, poll until every partition's position has
reached its end offset (exclusive), hand back only the records below the ends.
"""

from __future__ import annotations

import time
from typing import Callable, Iterator, Mapping


def read_to_end(consumer, ends: Mapping, starts: Mapping | None = None, *, deadline: float | None = None,
                timed_out: Callable[[dict], Exception] | None = None, poll_ms: int = 500) -> Iterator[list]:
    """Assign ``consumer`` the partitions of ``ends`` (``TopicPartition -> end offset``, exclusive),
    seek each to ``starts[tp]`` (absent or None: its beginning) and yield each poll's records
    below the ends, by partition then offset, until every partition has reached its end.

    Past ``deadline`` (``time.monotonic()``) it raises ``timed_out(unread)``, ``unread`` being
    ``TopicPartition -> (position, end)`` of the partitions not yet read to their end.
    """
    tps = sorted(ends, key=lambda tp: (tp.topic, tp.partition))
    if not tps:
        return
    consumer.assign(tps)
    starts = starts or {}
    from_beginning = [tp for tp in tps if starts.get(tp) is None]
    if from_beginning:
        consumer.seek_to_beginning(*from_beginning)
    for tp in tps:
        if starts.get(tp) is not None:
            consumer.seek(tp, starts[tp])
    pending = dict(ends)
    while True:
        for tp in list(pending):
            if consumer.position(tp) >= pending[tp]:
                del pending[tp]
        if not pending:
            return
        if deadline is not None and time.monotonic() >= deadline:
            unread = {tp: (consumer.position(tp), end) for tp, end in pending.items()}
            raise (timed_out(unread) if timed_out is not None else TimeoutError(f"partitions {unread} not read"))
        polled = consumer.poll(timeout_ms=poll_ms)
        batch: list = []
        for tp in sorted(polled, key=lambda tp: (tp.topic, tp.partition)):
            end = ends.get(tp)
            if end is not None:
                batch.extend(r for r in polled[tp] if r.offset < end)
        yield batch
