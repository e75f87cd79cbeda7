"""Experiment lifecycle events: the immutable records of topic ``hub.experiments`` and their table rows.

Every step of an experiment is one event keyed by experiment id; the current state is a fold over
them (``hub.experiments.lifecycle``). Events are JSON objects whose ``kind`` field names the event
(``KINDS``); every event carries ``experiment_id``, ``event_id`` (a UUID), ``actor``, ``time``
(RFC 3339, UTC) and ``sequence``, its 1-based position in the experiment's timeline, which makes
the order of a timeline explicit and a lost or doubled event detectable.

Build events with the command helpers in ``hub.experiments.lifecycle``, which check them against
the current state; the constructors here check nothing. ``decode_event`` checks every field.

Storage: ``event_row`` gives one row of the ClickHouse table ``experiment_events``
(``schemas/clickhouse/0004_experiment_events.sql``) in ``EVENT_COLUMNS`` order, each value given
by its column's name in ``EVENT_VALUES``.
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime, timezone
from typing import Annotated, Final, Literal, Union, get_args

import msgspec

from hub.records.rows import compile_row

__all__ = [
    "Event",
    "KINDS",
    "BadEvent",
    "PrerequisiteResult",
    "ExperimentCreated",
    "PrerequisitesChecked",
    "ExperimentStarted",
    "PhaseChanged",
    "FaultInjected",
    "FaultRemoved",
    "NoteAdded",
    "ExperimentAborted",
    "ExperimentCompleted",
    "encode_event",
    "decode_event",
    "EVENT_COLUMNS",
    "EVENT_VALUES",
    "EVENT_NAMESPACE",
    "event_row",
]

UTC: Final = timezone.utc

NonEmptyStr = Annotated[str, msgspec.Meta(min_length=1)]
#: RFC 3339 timestamp with an offset; naive timestamps are rejected.
Timestamp = Annotated[datetime, msgspec.Meta(tz=True)]
#: A UUID in its canonical text form (the ClickHouse column is a UUID).
UuidStr = Annotated[str, msgspec.Meta(
    pattern=r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")]
Sequence = Annotated[int, msgspec.Meta(ge=1, le=4294967295)]  # the column is UInt32
ParameterValue = Union[str, int, float, bool]


class BadEvent(ValueError):
    """Bytes that are not a valid experiment event; ``reason`` suits ``hub.errors.InvalidRecord``."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class _Event(msgspec.Struct, tag_field="kind", forbid_unknown_fields=True, frozen=True, kw_only=True):
    """Fields common to every event."""

    experiment_id: NonEmptyStr
    event_id: UuidStr
    actor: NonEmptyStr  # a person, or a component such as the abort-rule judge
    time: Timestamp
    sequence: Sequence


class PrerequisiteResult(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    """The state of one prerequisite of the definition, as checked by a person."""

    item: NonEmptyStr
    done: bool
    note: str = ""


class ExperimentCreated(_Event, tag="experiment_created", frozen=True, kw_only=True):
    """The definition, as plain data (``definition_to_dict``), with its ``id`` filled in."""

    definition: dict


class PrerequisitesChecked(_Event, tag="prerequisites_checked", frozen=True, kw_only=True):
    results: list[PrerequisiteResult]


class ExperimentStarted(_Event, tag="experiment_started", frozen=True, kw_only=True):
    #: True when the experiment started although prerequisites were not all done (kept for the review).
    forced: bool = False


class PhaseChanged(_Event, tag="phase_changed", frozen=True, kw_only=True):
    phase: NonEmptyStr


class FaultInjected(_Event, tag="fault_injected", frozen=True, kw_only=True):
    fault_id: NonEmptyStr
    action: NonEmptyStr  # e.g. stop-instance, stop-zone, add-latency, power-off-hypervisor
    target: NonEmptyStr  # what was hit, e.g. patients-db-primary (zone a)
    parameters: dict[str, ParameterValue] = {}
    injector: NonEmptyStr  # the tool or person that injected it, e.g. aws-fis, chaos-toolkit


class FaultRemoved(_Event, tag="fault_removed", frozen=True, kw_only=True):
    fault_id: NonEmptyStr


class NoteAdded(_Event, tag="note_added", frozen=True, kw_only=True):
    """An observation, or a surprise: what actually happened against what was expected."""

    note_id: NonEmptyStr
    note_kind: Literal["observation", "surprise"]
    text: NonEmptyStr
    expected: str = ""
    actual: str = ""
    tags: list[NonEmptyStr] = []


class ExperimentAborted(_Event, tag="experiment_aborted", frozen=True, kw_only=True):
    reason: NonEmptyStr
    by: NonEmptyStr  # who or what decided: a person, or an abort condition


class ExperimentCompleted(_Event, tag="experiment_completed", frozen=True, kw_only=True):
    summary: str = ""
    #: True when completed while faults were still active (they stay active until removed).
    forced: bool = False


Event = Union[
    ExperimentCreated,
    PrerequisitesChecked,
    ExperimentStarted,
    PhaseChanged,
    FaultInjected,
    FaultRemoved,
    NoteAdded,
    ExperimentAborted,
    ExperimentCompleted,
]
#: Every value of the ``kind`` field, in lifecycle order.
KINDS: Final[tuple[str, ...]] = tuple(t.__struct_config__.tag for t in get_args(Event))

_ENCODER: Final = msgspec.json.Encoder()
_DECODER: Final = msgspec.json.Decoder(Event)
_MAX_SHOWN: Final = 200
#: Deepest nesting of arrays and objects an event may have (a definition needs well under ten levels):
#: deeper values are refused before any decoder recurses into them.
MAX_DEPTH: Final = 64
#: What the ClickHouse column ``DateTime64(3, 'UTC')`` can hold; an event time outside is refused.
MIN_TIME: Final = datetime(1900, 1, 1, tzinfo=UTC)
MAX_TIME: Final = datetime(2299, 12, 31, 23, 59, 59, 999000, tzinfo=UTC)
_STRINGS: Final = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')
_NOT_BRACKETS: Final = bytes(b for b in range(256) if b not in b"[]{}")


def encode_event(event: Event) -> bytes:
    """The JSON bytes published to ``hub.experiments`` (the key is ``event.experiment_id``)."""
    return _ENCODER.encode(event)


def nesting_depth(value: bytes, limit: int = MAX_DEPTH) -> int:
    """How deep arrays and objects nest in JSON bytes, counted up to ``limit + 1`` (brackets inside
    strings do not count). A loop over the brackets alone: no recursion, whatever the input."""
    if value.count(b"[") + value.count(b"{") <= limit:
        return 0  # cannot nest deeper than it has brackets
    depth = deepest = 0
    for b in _STRINGS.sub(b'""', value).translate(None, _NOT_BRACKETS):
        if b in (0x5B, 0x7B):  # [ {
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > limit:
                    break
        else:
            depth -= 1
    return deepest


def decode_event(value: bytes | str) -> Event:
    """One validated event; ``BadEvent`` with a reason ``"<kind>: <detail>"`` otherwise.

    Reason kinds: ``empty value``, ``too deeply nested`` (arrays and objects nested more than
    ``MAX_DEPTH`` levels, refused before decoding so no decoder recurses into them), ``not JSON``,
    ``unknown kind``, ``schema``, ``timestamp out of range`` (a time the store's column cannot
    hold); the same wording, from the same helpers, as the reasons of ``hub.records.decode``, so a
    consumer can pass ``reason`` to ``InvalidRecord``.
    """
    if not value:
        raise BadEvent("empty value")
    if isinstance(value, str):
        value = value.encode()
    from hub.records.decode import COLUMN_RANGE, depth_reason, json_error

    if nesting_depth(value) > MAX_DEPTH:
        raise BadEvent(depth_reason(MAX_DEPTH))
    try:
        event = _DECODER.decode(value)
    except RecursionError:  # pragma: no cover - the depth check comes first
        raise BadEvent(depth_reason(MAX_DEPTH)) from None
    except msgspec.ValidationError as exc:
        detail = str(exc)
        if detail.startswith("Invalid value") and detail.endswith("`$.kind`"):
            raise BadEvent(f"unknown kind: {detail.split(' - at ')[0][len('Invalid value '):]}"
                           f" (expected one of {', '.join(KINDS)})") from None
        raise BadEvent(f"schema: {detail[:_MAX_SHOWN]}") from None
    except msgspec.DecodeError as exc:
        raise BadEvent(f"not JSON: {json_error(value, exc)[:_MAX_SHOWN]}") from None
    if not MIN_TIME <= event.time <= MAX_TIME:  # the range of the DateTime64 column (COLUMN_RANGE)
        raise BadEvent(COLUMN_RANGE.reason_at(f"time {event.time.isoformat()}", event.time))
    return event


# ---- ClickHouse row ----------------------------------------------------------------------
#: Columns of ``{db}.experiment_events`` in insert order.
EVENT_COLUMNS: Final[tuple[str, ...]] = (
    "experiment_id",
    "sequence",
    "event_id",
    "kind",
    "time",
    "actor",
    "phase",
    "payload",
)


#: Each ``experiment_events`` column's value, by name: an expression of the event ``e`` (compiled in
#: the order of ``EVENT_COLUMNS``, and of ``hub.experiments.projection.PROJECTION_COLUMNS``).
EVENT_VALUES: Final[dict[str, str]] = {
    "experiment_id": "e.experiment_id",
    "sequence": "e.sequence",
    "event_id": "UUID(e.event_id)",
    "kind": "e.__struct_config__.tag",
    "time": "utc(e.time)",
    "actor": "e.actor",
    "phase": "e.phase if isinstance(e, PhaseChanged) else ''",
    "payload": "encode_event(e).decode()",
}


def _utc(t: datetime) -> datetime:
    return t if t.tzinfo is UTC else t.astimezone(UTC)


#: The globals of ``EVENT_VALUES``' expressions.
EVENT_NAMESPACE: Final[dict[str, object]] = {"UUID": uuid.UUID, "utc": _utc, "PhaseChanged": PhaseChanged,
                                             "encode_event": encode_event}
_event_row: Final = compile_row("experiment_events", EVENT_COLUMNS, EVENT_VALUES, "e", EVENT_NAMESPACE)


def event_row(event: Event) -> tuple:
    """One ``experiment_events`` row, in ``EVENT_COLUMNS`` order (built by name, ``EVENT_VALUES``).

    ``payload`` is the whole event as JSON (``decode_event(payload)`` gives the event back), so
    the table alone is enough to fold a timeline; ``phase`` is filled for ``phase_changed`` only.
    """
    return _event_row(event)
