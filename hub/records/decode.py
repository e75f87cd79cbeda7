"""The hot path: raw Kafka records to ClickHouse rows, in batches.

All validation happens inside msgspec (in C) against ``RequestLegEvent``; the per-record Python
work is one decode call and building one tuple. A record that cannot be used becomes an
``InvalidRecord`` with a short reason (``"<kind>: <detail>"``, the kind being one of
``empty value``, ``oversized``, ``not JSON``, ``unknown type``, ``schema``) and its source
coordinates; the records around it still decode.

Dead letters: ``to_dead_letter`` makes the JSON record published to the dead-letter topic,
``dead_letter_row`` the row of the ClickHouse table ``dead_letters``
(``schemas/clickhouse/0003_dead_letters.sql``).
"""

from __future__ import annotations

import base64
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Final, NamedTuple, Sequence

import msgspec

from hub.errors import InvalidRecord
from hub.names import RECORD_REQUEST_LEG
from hub.records.request_leg import EVENT_ID_NAMESPACE, REQUEST_COLUMNS, RequestLegEvent

__all__ = [
    "RawMessage",
    "DecodedBatch",
    "REQUEST_COLUMNS",
    "decode_request_legs",
    "DeadLetter",
    "DEAD_LETTER_COLUMNS",
    "make_dead_letter",
    "to_dead_letter",
    "decode_dead_letter",
    "dead_letter_row",
    "dead_letter_record_row",
]

UTC: Final = timezone.utc


class RawMessage(NamedTuple):
    """One Kafka record as consumed: coordinates, key and value bytes, broker timestamp."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp_ms: int


@dataclass(slots=True)
class DecodedBatch:
    """Rows (in the table's column order), the records that could not be used, and where each row came from.

    ``sources`` runs parallel to ``rows``: ``sources[i]`` is ``(offset, index)``, the offset of the
    Kafka record (of the chunk's partition) that ``rows[i]`` was decoded from and the position of its
    event inside that record: the event's index in a CloudEvents batch record, -1 for a record
    that is a single event; for OTLP records, the row's position among the rows that record gave
    (span, log record or data point order). A step that drops or reorders rows must do the same to
    ``sources``. Empty only for a batch built by hand without them.
    """

    rows: list[tuple] = field(default_factory=list)
    invalid: list[InvalidRecord] = field(default_factory=list)
    sources: list[tuple[int, int]] = field(default_factory=list)


_DECODER: Final = msgspec.json.Decoder(RequestLegEvent)


class _Head(msgspec.Struct, gc=False):
    """Just the envelope's ``type``, read only when a record failed validation."""

    type: object = None


_HEAD_DECODER: Final = msgspec.json.Decoder(_Head)
_MAX_SHOWN: Final = 120


def _schema_reason(value: bytes, exc: msgspec.ValidationError) -> str:
    """``unknown type: '...'`` when the envelope names another record type, else ``schema: ...``."""
    try:
        head = _HEAD_DECODER.decode(value)
    except (msgspec.ValidationError, msgspec.DecodeError):
        head = None
    if head is not None and isinstance(head.type, str) and head.type != RECORD_REQUEST_LEG:
        shown = head.type if len(head.type) <= _MAX_SHOWN else head.type[:_MAX_SHOWN] + "..."
        return f"unknown type: {shown!r}"
    return "schema: " + str(exc).replace("`", "")[:_MAX_SHOWN * 2]


_LIST_DECODER: Final = msgspec.json.Decoder(list[msgspec.Raw])


def decode_request_legs(messages: Sequence[RawMessage], max_bytes: int) -> DecodedBatch:
    """Decode a batch of ``dev.gamedayhub.request.leg.v1`` records into ``requests`` rows.

    A Kafka record holds one CloudEvent (structured mode, a JSON object) or a CloudEvents
    batch (``application/cloudevents-batch+json``, a JSON array of them). Never raises for a
    bad record: each becomes an ``InvalidRecord`` in ``invalid``; for an event inside a batch,
    ``index`` says which one, and the batch's other events still decode.
    """
    return decode_cloudevents(messages, max_bytes, _decode_one, _decode_whole)


class _UuidIdEvent(RequestLegEvent):
    """The common case, decoded faster: an ``id`` that is a UUID (msgspec parses it in C).

    It accepts a subset of what ``RequestLegEvent`` accepts, so trying it first and falling back
    to the general decoder changes no decision, only the speed.
    """

    id: uuid.UUID


_FAST_ONE: Final = msgspec.json.Decoder(_UuidIdEvent)
_FAST_LIST: Final = msgspec.json.Decoder(list[_UuidIdEvent])


def _decode_whole(value: bytes, is_batch: bool, rows: list) -> bool:
    try:
        events = _FAST_LIST.decode(value) if is_batch else (_FAST_ONE.decode(value),)
    except (msgspec.ValidationError, msgspec.DecodeError):
        return False
    for e in events:
        rows.append(_row(e, e.id))
    return True


def _row(e, eid: uuid.UUID) -> tuple:
    d = e.data
    t = d.event_time
    if t.tzinfo is not UTC:
        t = t.astimezone(UTC)
    return (
        eid, t,
        d.experiment_id or e.experimentid or "",
        d.phase or e.experimentphase or "",
        d.correlation_id, d.leg, d.gateway, d.route, d.method, d.backend,
        d.status, d.latency_ms, d.request_bytes, d.response_bytes,
        d.response_hash, d.error, e.source,
    )


def decode_cloudevents(messages: Sequence[RawMessage], max_bytes: int, decode_one,
                       decode_whole=None) -> DecodedBatch:
    """The record-level checks every CloudEvents topic shares: empty, oversized, single or batch.

    ``decode_one(value, message, index, rows, invalid)`` decodes one event (index -1 for a
    record that is a single event) and appends its row or an ``InvalidRecord``.
    ``decode_whole(value, is_batch, rows)``, when given, is tried first on the whole record: it
    appends every event's row and returns True, or appends nothing and returns False, and then
    the record is decoded event by event (which names each bad event). ``sources`` is filled
    here from how many rows each call appended (at most one per ``decode_one`` call).
    """
    rows: list[tuple] = []
    invalid: list[InvalidRecord] = []
    sources: list[tuple[int, int]] = []
    for m in messages:
        value = m[4]
        offset = m[2]
        if not value:
            invalid.append(InvalidRecord("empty value", m[0], m[1], offset))
            continue
        if len(value) > max_bytes:
            invalid.append(InvalidRecord(f"oversized: {len(value)} bytes > {max_bytes}", m[0], m[1], offset))
            continue
        is_batch = value.lstrip()[:1] == b"["
        before = len(rows)
        if decode_whole is not None and decode_whole(value, is_batch, rows):
            if is_batch:
                sources.extend([(offset, index) for index in range(len(rows) - before)])
            else:
                sources.append((offset, -1))
        elif is_batch:
            try:
                elements = _LIST_DECODER.decode(value)
            except (msgspec.ValidationError, msgspec.DecodeError) as exc:
                invalid.append(InvalidRecord(f"not JSON: {exc}", m[0], m[1], offset))
                continue
            for index, element in enumerate(elements):
                decode_one(bytes(element), m, index, rows, invalid)
                if len(rows) > before:
                    sources.append((offset, index))
                    before += 1
        else:
            decode_one(value, m, -1, rows, invalid)
            if len(rows) > before:
                sources.append((offset, -1))
    return DecodedBatch(rows, invalid, sources)


def _decode_one(value: bytes, m: RawMessage, index: int, rows: list, invalid: list) -> None:
    try:
        e = _DECODER.decode(value)
    except msgspec.ValidationError as exc:
        invalid.append(InvalidRecord(_schema_reason(value, exc), m[0], m[1], m[2], index=index))
        return
    except msgspec.DecodeError as exc:
        invalid.append(InvalidRecord(f"not JSON: {exc}", m[0], m[1], m[2], index=index))
        return
    try:
        eid = uuid.UUID(e.id)
    except ValueError:
        eid = uuid.uuid5(EVENT_ID_NAMESPACE, e.id)
    rows.append(_row(e, eid))


def element_bytes(raw: RawMessage, index: int) -> bytes | None:
    """The bytes of one event of a batch record (the whole value when ``index`` is -1)."""
    if index < 0 or not raw.value:
        return raw.value
    try:
        return bytes(_LIST_DECODER.decode(raw.value)[index])
    except (msgspec.ValidationError, msgspec.DecodeError, IndexError):
        return raw.value


# ---- dead letters --------------------------------------------------------------------------


class DeadLetter(msgspec.Struct, forbid_unknown_fields=True):
    """The JSON record published to the dead-letter topic. ``key`` and ``value`` are base64."""

    reason: str
    source_topic: str
    source_partition: int
    source_offset: int
    source_index: int
    source_timestamp_ms: int
    key: str | None
    value: str | None
    dead_time: datetime


#: Columns of ``{db}.dead_letters`` in insert order.
DEAD_LETTER_COLUMNS: Final[tuple[str, ...]] = (
    "dead_time",
    "source_topic",
    "source_partition",
    "source_offset",
    "source_index",
    "reason",
    "key",
    "value",
)

_DEAD_ENCODER: Final = msgspec.json.Encoder()
_DEAD_DECODER: Final = msgspec.json.Decoder(DeadLetter)


def _b64(data: bytes | None) -> str | None:
    return None if data is None else base64.b64encode(data).decode("ascii")


def _now() -> datetime:
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def make_dead_letter(invalid: InvalidRecord, raw: RawMessage, dead_time: datetime | None = None) -> DeadLetter:
    """The dead letter of ``raw``; coordinates come from the raw record itself."""
    return DeadLetter(
        reason=invalid.reason,
        source_topic=raw.topic,
        source_partition=raw.partition,
        source_offset=raw.offset,
        source_index=invalid.index,
        source_timestamp_ms=raw.timestamp_ms,
        key=_b64(raw.key),
        value=_b64(element_bytes(raw, invalid.index)),
        dead_time=dead_time if dead_time is not None else _now(),
    )


def to_dead_letter(invalid: InvalidRecord, raw: RawMessage, dead_time: datetime | None = None) -> bytes:
    """The JSON dead-letter record (``DeadLetter``) for the dead-letter topic."""
    return _DEAD_ENCODER.encode(make_dead_letter(invalid, raw, dead_time))


def decode_dead_letter(value: bytes) -> DeadLetter:
    """Read back a record made by ``to_dead_letter``; raises ``msgspec.DecodeError``/``ValidationError``."""
    return _DEAD_DECODER.decode(value)


def dead_letter_record_row(letter: DeadLetter) -> tuple:
    """A ``dead_letters`` row, in ``DEAD_LETTER_COLUMNS`` order (absent key/value become "")."""
    t = letter.dead_time
    if t.tzinfo is None:
        t = t.replace(tzinfo=UTC)
    return (
        t.astimezone(UTC),
        letter.source_topic,
        letter.source_partition,
        letter.source_offset,
        letter.source_index,
        letter.reason,
        letter.key or "",
        letter.value or "",
    )


def dead_letter_row(invalid: InvalidRecord, raw: RawMessage, dead_time: datetime | None = None) -> tuple:
    """The ``dead_letters`` row of ``raw``, in ``DEAD_LETTER_COLUMNS`` order."""
    return dead_letter_record_row(make_dead_letter(invalid, raw, dead_time))
