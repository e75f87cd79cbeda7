"""The experiment log's projection: events from ``hub.experiments`` as ``experiment_events`` rows."""

from __future__ import annotations

from typing import Sequence

from hub.errors import InvalidRecord
from hub.experiments.events import BadEvent, decode_event, event_row
from hub.records.decode import DecodedBatch, RawMessage


def decode_experiment_events(messages: Sequence[RawMessage], max_bytes: int) -> DecodedBatch:
    rows: list[tuple] = []
    invalid: list[InvalidRecord] = []
    for m in messages:
        if m.value and len(m.value) > max_bytes:
            invalid.append(InvalidRecord(f"oversized: {len(m.value)} bytes > {max_bytes}", m.topic, m.partition, m.offset))
            continue
        try:
            rows.append(event_row(decode_event(m.value or b"")))
        except BadEvent as exc:
            invalid.append(InvalidRecord(str(exc), m.topic, m.partition, m.offset))
    return DecodedBatch(rows, invalid)
