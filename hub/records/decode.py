"""The hot path: raw Kafka records to ClickHouse rows, in batches.

All validation happens inside msgspec (in C) against ``RequestLegEvent``; the per-record Python
work is one decode call and building one tuple. A record that cannot be used becomes an
``InvalidRecord`` with a short reason (``"<kind>: <detail>"``, the kind being one of
``empty value``, ``oversized``, ``not JSON``, ``unknown type``, ``schema``) and its source
coordinates; the records around it still decode.

Limits every decoder of the hub applies (``limits_from`` reads them from the settings): a record
over ``max_bytes`` is ``oversized``; JSON nested deeper than ``max_depth`` arrays/objects is
``too deeply nested: > N levels`` (checked before anything walks the value, so no input can
exhaust the stack); an event time outside the window (``min_year`` .. now + ``max_future_seconds``,
and what the column can hold) is ``timestamp out of range: ...``. For a table with a TTL
(``ttl_days``, HUB_TTL_DAYS, > 0) the window also starts no earlier than now - ``ttl_days``: a
row older than that would be dropped by the TTL as soon as it is stored, so it is refused as
``timestamp out of range: ... older than the store keeps (HUB_TTL_DAYS=N)`` instead. None of
them raises.

Dead letters: ``to_dead_letter`` makes the JSON record published to the dead-letter topic,
``dead_letter_row`` the row of the ClickHouse table ``dead_letters``
(``schemas/clickhouse/0003_dead_letters.sql``).
"""

from __future__ import annotations

import base64
import re
import time
import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from itertools import accumulate, repeat
from operator import itemgetter
from typing import Final, NamedTuple, Sequence

import msgspec

from hub.errors import InvalidRecord
from hub.names import RECORD_REQUEST_LEG
from hub.records.request_leg import (EVENT_ID_NAMESPACE, REQ_EVENT_TIME, REQ_LATENCY_MS, REQUEST_COLUMNS,
                                     RequestLegEvent, row_of)

__all__ = [
    "RawMessage",
    "DecodedBatch",
    "REQUEST_COLUMNS",
    "decode_request_legs",
    "Limits",
    "limits_from",
    "too_deep",
    "depth_reason",
    "json_error",
    "TimeWindow",
    "COLUMN_RANGE",
    "DeadLetter",
    "DEAD_LETTER_COLUMNS",
    "make_dead_letter",
    "to_dead_letter",
    "decode_dead_letter",
    "dead_letter_identity",
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


# ---- limits ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Limits:
    """What every decoder refuses: records over ``max_bytes``, nesting deeper than ``max_depth``,
    event times before January 1 of ``min_year`` (UTC) or more than ``max_future_seconds`` ahead,
    and, when ``ttl_days`` > 0 (the table's TTL), event times more than ``ttl_days`` days ago."""

    max_bytes: int = 1_000_000
    max_depth: int = 64
    max_future_seconds: float = 86_400
    min_year: int = 2000
    ttl_days: int = 0

    def without_ttl(self) -> "Limits":
        """These limits for a table without a TTL (no lower bound from the retention)."""
        return replace(self, ttl_days=0)


def limits_from(settings) -> Limits:
    """The ``Limits`` of the hub's settings (``HUB_MAX_RECORD_BYTES``, ``HUB_MAX_NESTING_DEPTH``, ...,
    ``HUB_TTL_DAYS``: the decoders of topics whose table has no TTL use ``.without_ttl()``)."""
    return Limits(settings.max_record_bytes, settings.max_nesting_depth, settings.max_future_seconds,
                  settings.min_event_year, max(int(settings.ttl_days), 0))


def depth_reason(limit: int) -> str:
    return f"too deeply nested: > {limit} levels"


_JSON_STRING: Final = re.compile(rb'"[^"\\]*+(?:\\.[^"\\]*+)*+"', re.S)
_BRACKETS: Final = b"[]{}"
_NOT_BRACKETS: Final = bytes(c for c in range(256) if c not in _BRACKETS)
_STEP: Final = [0] * 256
_STEP[ord("[")] = _STEP[ord("{")] = 1
_STEP[ord("]")] = _STEP[ord("}")] = -1


def too_deep(value: bytes, limit: int) -> bool:
    """True when JSON ``value`` nests arrays/objects more than ``limit`` levels deep.

    Brackets inside strings do not count. Runs in C-level passes (no parsing, no recursion), and
    costs two counts when the value has no more brackets than ``limit``. Input that is not JSON
    gets an answer too (its brackets outside what looks like strings are counted).
    """
    if value.count(b"[") + value.count(b"{") <= limit:
        return False
    if b'"' in value:
        value = _JSON_STRING.sub(b"", value)
    structure = value.translate(None, _NOT_BRACKETS)
    if len(structure) <= limit:
        return False
    return max(accumulate(map(_STEP.__getitem__, structure))) > limit


#: A ``\\uD800``..``\\uDBFF`` escape (the first half of a UTF-16 surrogate pair) not followed by
#: the escape of a second half, and not itself escaped (an even run of backslashes before it).
_LONE_SURROGATE: Final = re.compile(
    rb'(?<!\\)(?:\\\\)*(\\u[dD][89abAB][0-9a-fA-F]{2})(?!\\u[dD][c-fC-F][0-9a-fA-F]{2})')


def json_error(value: bytes, exc: Exception) -> str:
    """What is wrong with JSON ``value`` that msgspec refused with ``exc``, in words that are true.

    For a string holding a lone high surrogate escape (``"\\ud800"``) msgspec says ``Input data
    was truncated``, ``invalid hex escape`` or the like, depending on what follows it, none of
    which is what is wrong: that case is named for what it is.
    """
    detail = str(exc)
    if "surrogate" in detail or "truncated" in detail or "escape" in detail:
        lone = _LONE_SURROGATE.search(value)
        if lone is not None:
            shown = lone.group(1).decode("ascii").lower()
            return (f"JSON is malformed: invalid utf-16 surrogate pair: {shown} is not followed by a "
                    f"low surrogate (byte {lone.start(1)})")
    return detail


def split_array(value: bytes) -> list[bytes] | None:
    """The elements of a JSON array as bytes, found by counting brackets outside strings, without
    decoding them: for a batch holding an event nested too deep for the decoder, so that only that
    event is refused. None when ``value`` is not one array (its elements are not checked here)."""
    masked = _JSON_STRING.sub(lambda s: b'"' + b"x" * (len(s.group(0)) - 2) + b'"', value) \
        if b'"' in value else value
    start = masked.find(b"[")
    if start < 0 or masked[:start].strip():
        return None
    elements: list[bytes] = []
    depth, begin = 0, start + 1
    for i in range(start, len(masked)):
        c = masked[i]
        if c == 0x5B or c == 0x7B:  # [ {
            depth += 1
        elif c == 0x5D or c == 0x7D:  # ] }
            depth -= 1
            if depth == 0:
                last = value[begin:i].strip()
                if last or elements:
                    elements.append(last)
                return elements if not masked[i + 1:].strip() else None
        elif c == 0x2C and depth == 1:  # ,
            elements.append(value[begin:i].strip())
            begin = i + 1
    return None


#: The range of a ``DateTime64`` column (ClickHouse: 1900-01-01 .. 2299-12-31 23:59:59.999...).
DATETIME64_MIN: Final = datetime(1900, 1, 1, tzinfo=UTC)
DATETIME64_MAX: Final = datetime(2299, 12, 31, 23, 59, 59, 999000, tzinfo=UTC)
#: The range of a ``DateTime64(9)`` column in nanoseconds since the epoch (Int64 ticks from 1900).
NANOS_MIN: Final = -2_208_988_800 * 10**9
NANOS_MAX: Final = 2**63 - 1


class TimeWindow(NamedTuple):
    """The event times a decoder accepts now: ``lo`` .. ``hi`` as datetimes and as nanoseconds.

    ``ttl_days`` is set when ``lo`` is the retention bound (now - HUB_TTL_DAYS days, later than
    January 1 of the minimum year); 0 otherwise."""

    lo: datetime
    hi: datetime
    lo_ns: int
    hi_ns: int
    ttl_days: int = 0

    @classmethod
    def of(cls, limits: Limits, now: float | None = None) -> "TimeWindow":
        now = time.time() if now is None else now
        year = min(max(limits.min_year, 1900), 2299)
        lo = max(datetime(year, 1, 1, tzinfo=UTC), DATETIME64_MIN)
        ttl_days = 0
        if limits.ttl_days > 0:
            kept_s = now - min(limits.ttl_days, 10**6) * 86_400
            if kept_s > lo.timestamp():
                lo, ttl_days = datetime.fromtimestamp(kept_s, UTC), limits.ttl_days
        ahead = min(max(limits.max_future_seconds, 0), 10**10)
        hi_s = now + ahead
        hi = DATETIME64_MAX if hi_s >= DATETIME64_MAX.timestamp() else datetime.fromtimestamp(hi_s, UTC)
        lo_ns = max(int(lo.timestamp() * 1e6) * 1000, NANOS_MIN)
        hi_ns = min(int(hi_s * 1e6) * 1000, NANOS_MAX)
        return cls(lo, hi, lo_ns, hi_ns, ttl_days)

    def reason(self, shown: str, older: bool = False) -> str:
        """``timestamp out of range: <shown> (accepted: from year Y to <hi>)``; when the retention
        bound is the lower bound, ``(accepted: from N days ago (HUB_TTL_DAYS) to <hi>)``, and for a
        time before it (``older``) ``timestamp out of range: <shown> older than the store keeps
        (HUB_TTL_DAYS=N)``. The bounds are worded so that dead-letter redaction (which
        masks birth-date-like dates and long numbers) keeps them."""
        if self.ttl_days:
            if older:
                return f"timestamp out of range: {shown} older than the store keeps (HUB_TTL_DAYS={self.ttl_days})"
            return (f"timestamp out of range: {shown} (accepted: from {self.ttl_days} days ago "
                    f"(HUB_TTL_DAYS) to {_iso(self.hi)})")
        return f"timestamp out of range: {shown} (accepted: from year {self.lo.year} to {_iso(self.hi)})"

    def reason_at(self, shown: str, t: datetime) -> str:
        """The reason for the refused time ``t`` (an aware datetime), shown as ``shown``."""
        return self.reason(shown, t < self.lo)

    def reason_ns(self, what: str, ns: int) -> str:
        return self.reason(f"{what} {iso_nanos(ns)}", ns < self.lo_ns)


#: Every time a ``DateTime64`` column holds (no plausibility window).
COLUMN_RANGE: Final = TimeWindow(DATETIME64_MIN, DATETIME64_MAX, NANOS_MIN, NANOS_MAX)


def _iso(t: datetime) -> str:
    return t.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


def iso_nanos(ns: int) -> str:
    """Nanoseconds since the epoch as an ISO 8601 UTC time with nine decimals (any UInt64 fits)."""
    seconds, fraction = divmod(ns, 10**9)
    try:
        whole = (_EPOCH + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%S")
    except OverflowError:
        return f"{ns} ns"
    return f"{whole}.{fraction:09d}Z"


#: The largest magnitude a ``Float32`` column takes (a larger float cannot be packed as one).
FLOAT32_MAX: Final = 3.4028234663852886e38


def _row_fault(row: tuple, window: TimeWindow, time_at: int, float32: dict[int, str]) -> str:
    """Why ``row`` cannot be stored, or ''."""
    t = row[time_at]
    if not window.lo <= t <= window.hi:
        return window.reason_at(_iso(t), t)
    for i, name in float32.items():
        if not -FLOAT32_MAX <= row[i] <= FLOAT32_MAX:
            return f"schema: {name} {row[i]!r} does not fit Float32"
    return ""


def _check_rows(rows: list, sources: list, start: int, m, window: TimeWindow,
                invalid: list, time_at: int = 1, float32: dict[int, str] | None = None) -> None:
    """Move the rows appended since ``start`` that their columns cannot take (an event time outside
    ``window``, a float too large for the ``Float32`` columns ``float32``, index -> name) to ``invalid``."""
    lo, hi = window.lo, window.hi
    float32 = float32 or {}
    new = rows[start:]
    times = list(map(itemgetter(time_at), new))
    if lo <= min(times) and max(times) <= hi and all(
            max(map(abs, map(itemgetter(i), new))) <= FLOAT32_MAX for i in float32):
        return
    keep_rows, keep_sources = [], []
    for row, source in zip(new, sources[start:]):
        fault = _row_fault(row, window, time_at, float32)
        if fault:
            invalid.append(InvalidRecord(fault, m[0], m[1], m[2], index=source[1]))
        else:
            keep_rows.append(row)
            keep_sources.append(source)
    rows[start:] = keep_rows
    sources[start:] = keep_sources


_DECODER: Final = msgspec.json.Decoder(RequestLegEvent)
_LATENCY: Final = REQ_LATENCY_MS  # a Float32 column


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


def decode_request_legs(messages: Sequence[RawMessage], max_bytes: int, limits: Limits | None = None,
                        now: float | None = None) -> DecodedBatch:
    """Decode a batch of ``dev.gamedayhub.request.leg.v1`` records into ``requests`` rows.

    A Kafka record holds one CloudEvent (structured mode, a JSON object) or a CloudEvents
    batch (``application/cloudevents-batch+json``, a JSON array of them). Never raises for a
    bad record: each becomes an ``InvalidRecord`` in ``invalid``; for an event inside a batch,
    ``index`` says which one, and the batch's other events still decode. ``limits`` (the
    worker's: ``limits_from(settings)``) bound nesting and event times; without them the default
    depth applies and event times need only fit the column. ``now`` is the clock the future
    bound is taken from (default: the time of the call).
    """
    return decode_cloudevents(messages, max_bytes, _decode_one, _decode_whole, limits=limits, now=now,
                              time_at=REQ_EVENT_TIME, float32={_LATENCY: "latency_ms"})


class _UuidIdEvent(RequestLegEvent):
    """The common case, decoded faster: an ``id`` that is a UUID (msgspec parses it in C).

    It accepts a subset of what ``RequestLegEvent`` accepts, so trying it first and falling back
    to the general decoder changes no decision, only the speed.
    """

    id: uuid.UUID  # type: ignore[assignment]  # narrower than the base's str on purpose, see above


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
    return row_of(e, d, t, eid)


def decode_cloudevents(messages: Sequence[RawMessage], max_bytes: int, decode_one,
                       decode_whole=None, limits: Limits | None = None, now: float | None = None,
                       time_at: int = 1, float32: dict[int, str] | None = None) -> DecodedBatch:
    """The record-level checks every CloudEvents topic shares: empty, oversized, single or batch.

    ``decode_one(value, message, index, rows, invalid)`` decodes one event (index -1 for a
    record that is a single event) and appends its row or an ``InvalidRecord``.
    ``decode_whole(value, is_batch, rows)``, when given, is tried first on the whole record: it
    appends every event's row and returns True, or appends nothing and returns False, and then
    the record is decoded event by event (which names each bad event). ``sources`` is filled
    here from how many rows each call appended (at most one per ``decode_one`` call).

    The limits (``limits``; without them the default depth, and event times need only fit the
    column): an event nested deeper than
    ``max_depth`` (in a batch record: the event itself) is refused before anything walks it; a row whose ``row[time_at]`` (an aware
    datetime) is outside the time window, or whose value at an index of ``float32`` (index ->
    column name) is too large for a ``Float32``, is taken out again and refused with its index.
    """
    window = TimeWindow.of(limits, now) if limits is not None else COLUMN_RANGE
    if limits is None:
        limits = Limits(max_bytes)
    max_bytes = min(max_bytes, limits.max_bytes)
    max_depth = limits.max_depth
    lo, hi = window.lo, window.hi
    # a single event of the fast path is checked inline when there is at most one Float32 column
    inline = not float32 or len(float32) == 1
    f32 = next(iter(float32)) if float32 else None
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
        first = len(rows)
        try:
            if decode_whole is not None and decode_whole(value, is_batch, rows):
                if is_batch:
                    sources.extend(zip(repeat(offset, len(rows) - first), range(len(rows) - first)))
                else:
                    sources.append((offset, -1))
                    row = rows[-1]
                    if inline and lo <= row[time_at] <= hi and (
                            f32 is None or -FLOAT32_MAX <= row[f32] <= FLOAT32_MAX):
                        continue  # the common case, checked without a call
            elif is_batch:
                # Splitting skips over each event in C; msgspec stops with a RecursionError at the
                # interpreter's limit, so only a batch nested deeper than that is refused whole.
                elements: list[msgspec.Raw] | list[bytes]
                try:
                    elements = _LIST_DECODER.decode(value)
                except (msgspec.ValidationError, msgspec.DecodeError) as exc:
                    invalid.append(InvalidRecord(f"not JSON: {json_error(value, exc)}", m[0], m[1], offset))
                    continue
                except RecursionError:
                    # an event nested deeper than msgspec goes: split the array by its brackets
                    split = split_array(value)
                    if split is None:
                        invalid.append(InvalidRecord(depth_reason(max_depth), m[0], m[1], offset))
                        continue
                    elements = split
                deep = too_deep(value, max_depth + 1)
                before = first
                for index, element in enumerate(elements):
                    event = bytes(element)
                    if deep and too_deep(event, max_depth):
                        invalid.append(InvalidRecord(depth_reason(max_depth), m[0], m[1], offset, index=index))
                        continue
                    decode_one(event, m, index, rows, invalid)
                    if len(rows) > before:
                        sources.append((offset, index))
                        before += 1
            elif too_deep(value, max_depth):
                invalid.append(InvalidRecord(depth_reason(max_depth), m[0], m[1], offset))
                continue
            else:
                decode_one(value, m, -1, rows, invalid)
                if len(rows) > first:
                    sources.append((offset, -1))
        except RecursionError:  # the depth check above makes this unreachable; never let it escape
            del rows[first:], sources[first:]
            invalid.append(InvalidRecord(depth_reason(max_depth), m[0], m[1], offset))
            continue
        if len(rows) > first:
            _check_rows(rows, sources, first, m, window, invalid, time_at, float32)
    return DecodedBatch(rows, invalid, sources)


def _decode_one(value: bytes, m: RawMessage, index: int, rows: list, invalid: list) -> None:
    try:
        e = _DECODER.decode(value)
    except msgspec.ValidationError as exc:
        invalid.append(InvalidRecord(_schema_reason(value, exc), m[0], m[1], m[2], index=index))
        return
    except msgspec.DecodeError as exc:
        invalid.append(InvalidRecord(f"not JSON: {json_error(value, exc)}", m[0], m[1], m[2], index=index))
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


def dead_letter_identity(letter: DeadLetter) -> tuple[str, int, int, int]:
    """``(source_topic, source_partition, source_offset, source_index)``: what a dead letter is of.

    The dead-letter topic is at-least-once: after a worker or store crash the same record's dead
    letter may be published again (with another ``dead_time``). Every dead letter carries these
    four fields; a consumer of the topic de-duplicates on them (the ``dead_letters`` table does)."""
    return (letter.source_topic, letter.source_partition, letter.source_offset, letter.source_index)


def dead_letter_record_row(letter: DeadLetter) -> tuple:
    """A ``dead_letters`` row, in ``DEAD_LETTER_COLUMNS`` order (absent key/value become "")."""
    t = letter.dead_time
    if t.tzinfo is None:
        t = t.replace(tzinfo=UTC)
    values = {
        "dead_time": t.astimezone(UTC),
        "source_topic": letter.source_topic,
        "source_partition": letter.source_partition,
        "source_offset": letter.source_offset,
        "source_index": letter.source_index,
        "reason": letter.reason,
        "key": letter.key or "",
        "value": letter.value or "",
    }
    return tuple(values[column] for column in DEAD_LETTER_COLUMNS)  # by name: the constant's order rules


def dead_letter_row(invalid: InvalidRecord, raw: RawMessage, dead_time: datetime | None = None) -> tuple:
    """The ``dead_letters`` row of ``raw``, in ``DEAD_LETTER_COLUMNS`` order."""
    return dead_letter_record_row(make_dead_letter(invalid, raw, dead_time))
