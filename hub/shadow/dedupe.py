"""The pairs sink's filter that keeps ``shadow_pairs`` at one row per ``pair_id``.

Why pairs arrive twice: the stream pairing agent keeps its windows in memory. A worker that
crashes stores its last chunk of legs again when it restarts (the sink's recovery) and pairs it
again, so the pairs completed in that chunk are published a second time; a producer retry can do
the same. ``pair_id`` is deterministic (uuid5 of gateway and correlation id), so every
publication of one request's pair has the same id, and the same event time.

The rule, applied to each chunk of the pairs topic before it is inserted:

- a row is dropped when a row with the same ``pair_id`` is already stored from *another* record
  of the topic (``source_partition``/``source_offset`` outside this chunk) with an event time
  within ``window_s`` of the chunk's;
- within a chunk, the first row of a ``pair_id`` wins.

Rows stored from the chunk's own records do not count. That keeps the sink exactly-once: a chunk
written again after a crash (same offsets, same insert deduplication token) filters to the same
rows again, so the store drops the parts that had landed and inserts the others, as for every
other table. The look-up is one query per chunk (a bloom filter index on ``pair_id`` and the
event-time bounds keep it small). Publications of one pair share a partition (both emitters key
pairs by correlation id), and one sink writes a partition's chunks in order, so the look-up and
the insert cannot race.

Without a store (``hub replay``, which reads the topic from its first offset in one pass) the
filter remembers, per ``pair_id``, the record it was first seen in, for ``memory_horizon_s`` of
event time behind the newest pair: replay keeps the same first publication as the live worker.
"""

from __future__ import annotations

import heapq
import logging
import uuid
from typing import Sequence

from hub.shadow.records import PAIR_ID, PAIR_OFFSET, PAIR_PARTITION, PAIR_TIME

log = logging.getLogger(__name__)

__all__ = ["PairDeduplicator"]

_IDS_PER_QUERY = 5_000


class PairDeduplicator:
    """Filters decoded ``shadow_pairs`` batches (``DecodedBatch``: ``rows`` in ``PAIR_COLUMNS`` order)."""

    def __init__(self, store=None, *, window_s: float = 3600.0, memory_horizon_s: float = 86400.0):
        self.store = store
        self.window_s = float(window_s)
        self.memory_horizon_s = float(memory_horizon_s)
        self._seen: dict[uuid.UUID, tuple[int, int]] = {}
        self._expiry: list[tuple[float, uuid.UUID]] = []
        self._newest = float("-inf")
        self.stats = {"checked": 0, "dropped": 0}

    def __call__(self, batch):
        rows = batch.rows
        if not rows:
            return batch
        ranges = _ranges(rows)
        stored = self._stored_elsewhere(rows, ranges) if self.store is not None else self._seen_elsewhere(rows, ranges)
        kept, first = [], set()
        for row in rows:
            pid = row[PAIR_ID]
            if pid in stored or pid in first:
                continue
            first.add(pid)
            kept.append(row)
        dropped = len(rows) - len(kept)
        self.stats["checked"] += len(rows)
        self.stats["dropped"] += dropped
        if dropped:
            log.info("pairs sink: %d pair(s) already stored from other records dropped", dropped)
        if self.store is None:
            self._remember(kept)
        batch.rows = kept
        return batch

    # ---- with the store: what is stored --------------------------------------------------------
    def _stored_elsewhere(self, rows: Sequence[tuple], ranges: dict[int, tuple[int, int]]) -> set:
        times = [row[PAIR_TIME].timestamp() for row in rows]
        lo_ms = int((min(times) - self.window_s) * 1000)
        hi_ms = int((max(times) + self.window_s) * 1000) + 1
        ids = sorted({str(row[PAIR_ID]) for row in rows})
        found: set = set()
        for i in range(0, len(ids), _IDS_PER_QUERY):
            literal = ",".join(f"'{uuid.UUID(x)}'" for x in ids[i:i + _IDS_PER_QUERY])  # UUIDs: safe literals
            result = self.store.query(
                f"SELECT pair_id, source_partition, source_offset FROM {self.store.database}.shadow_pairs "
                "WHERE event_time >= fromUnixTimestamp64Milli({lo:Int64}, 'UTC') "
                "AND event_time < fromUnixTimestamp64Milli({hi:Int64}, 'UTC') "
                f"AND pair_id IN ({literal})", parameters={"lo": lo_ms, "hi": hi_ms})
            for pid, partition, offset in result.result_rows:
                if not _inside(ranges, partition, offset):
                    found.add(pid)
        return found

    # ---- without a store: what this filter has seen -------------------------------------------
    def _seen_elsewhere(self, rows: Sequence[tuple], ranges: dict[int, tuple[int, int]]) -> set:
        seen = self._seen
        return {row[PAIR_ID] for row in rows
                if row[PAIR_ID] in seen and not _inside(ranges, *seen[row[PAIR_ID]])}

    def _remember(self, rows: Sequence[tuple]) -> None:
        for row in rows:
            pid = row[PAIR_ID]
            if pid in self._seen:
                continue
            t = row[PAIR_TIME].timestamp()
            self._seen[pid] = (row[PAIR_PARTITION], row[PAIR_OFFSET])
            heapq.heappush(self._expiry, (t, pid))
            self._newest = max(self._newest, t)
        horizon = self._newest - self.memory_horizon_s
        while self._expiry and self._expiry[0][0] < horizon:
            _, pid = heapq.heappop(self._expiry)
            self._seen.pop(pid, None)

    @property
    def remembered(self) -> int:
        return len(self._seen)


def _ranges(rows: Sequence[tuple]) -> dict[int, tuple[int, int]]:
    """The chunk's offsets per partition (a sink chunk is one partition's contiguous offsets)."""
    out: dict[int, tuple[int, int]] = {}
    for row in rows:
        p, o = row[PAIR_PARTITION], row[PAIR_OFFSET]
        lo, hi = out.get(p, (o, o))
        out[p] = (min(lo, o), max(hi, o))
    return out


def _inside(ranges: dict[int, tuple[int, int]], partition: int, offset: int) -> bool:
    r = ranges.get(partition)
    return r is not None and r[0] <= offset <= r[1]
