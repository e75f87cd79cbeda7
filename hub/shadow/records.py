"""Shadow pair records (``dev.gamedayhub.shadow.pair.v1``): one comparison of a request's primary
and shadow legs, as a CloudEvents 1.0 envelope (structured JSON) whose ``data`` is a ``ShadowPair``.

Mirrors ``schemas/json/shadow_pair.v1.json``. Stored in ``{db}.shadow_pairs``
(``schemas/clickhouse/0007_shadow_pairs.sql``) in ``PAIR_COLUMNS`` order by ``decode_pairs``; the
last two columns are not from the event but from where it was read (partition and offset on the
pairs topic), which ``hub.shadow.dedupe`` needs to tell a pair published again from a chunk
stored again.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timezone
from typing import Annotated, Final, Literal, Sequence

import msgspec

from hub.errors import InvalidRecord
from hub.records.decode import DecodedBatch, Limits, RawMessage, decode_cloudevents, json_error
from hub.records.rows import compile_row

__all__ = ["RECORD_SHADOW_PAIR", "OUTCOMES", "Outcome", "ShadowPair", "PairEvent", "PAIR_COLUMNS",
           "PAIR_VALUES", "PAIR_NAMESPACE", "pair_id_of", "new_pair_event", "encode_pair", "decode_pairs",
           "pair_row",
           "PAIR_ID", "PAIR_TIME", "PAIR_PARTITION", "PAIR_OFFSET"]

UTC: Final = timezone.utc
RECORD_SHADOW_PAIR: Final = "dev.gamedayhub.shadow.pair.v1"

Outcome = Literal["match", "status_mismatch", "body_mismatch", "latency_regression", "shadow_missing",
                  "shadow_error", "dropped_by_bulkhead", "primary_failed"]
OUTCOMES: Final = ("match", "status_mismatch", "body_mismatch", "latency_regression", "shadow_missing",
                   "shadow_error", "dropped_by_bulkhead", "primary_failed")

NonEmptyStr = Annotated[str, msgspec.Meta(min_length=1)]
Timestamp = Annotated[datetime, msgspec.Meta(tz=True)]
Status = Annotated[int, msgspec.Meta(ge=0, le=599)]
Ms = Annotated[float, msgspec.Meta(ge=0)]


class ShadowPair(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True, gc=False):
    """The ``data`` of a ``dev.gamedayhub.shadow.pair.v1`` event.

    ``body_match`` is the raw comparison; ``differing_fields`` are the differences that remain
    once noise is taken out, ``noise_fields`` those explained by the noise model (``$`` is the
    whole body when it is not JSON or only hashes were compared). ``noise`` is true when the bodies
    differ and every difference is noise. ``latency_diff_ms`` is shadow minus primary.
    """

    correlation_id: NonEmptyStr
    gateway: NonEmptyStr
    route: NonEmptyStr
    method: NonEmptyStr
    primary_backend: NonEmptyStr
    outcome: Outcome
    event_time: Timestamp
    shadow_backend: str = ""
    secondary_backend: str = ""
    primary_status: Status = 0
    shadow_status: Status = 0
    secondary_status: Status = 0
    status_match: bool = False
    body_match: bool = False
    latency_primary_ms: Ms = 0.0
    latency_shadow_ms: Ms = 0.0
    latency_diff_ms: float = 0.0
    noise: bool = False
    differing_fields: list[str] = []
    noise_fields: list[str] = []
    shadow_error: str = ""
    experiment_id: str = ""
    phase: str = ""


class PairEvent(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True, gc=False):
    specversion: Literal["1.0"]
    id: NonEmptyStr
    source: NonEmptyStr
    type: Literal["dev.gamedayhub.shadow.pair.v1"]
    data: ShadowPair
    time: Timestamp | None = None
    datacontenttype: Literal["application/json"] | None = None
    dataschema: str | None = None
    subject: str | None = None


DATASCHEMA: Final = "https://gamedayhub.dev/schemas/json/shadow_pair.v1.json"
PAIR_NAMESPACE: Final = uuid.uuid5(uuid.NAMESPACE_URL, "https://gamedayhub.dev/records/shadow-pair")


def pair_id_of(gateway: str, correlation_id: str) -> uuid.UUID:
    """The pair's id: the same for every publication of the pair of one request (deduplicate by it)."""
    return uuid.uuid5(PAIR_NAMESPACE, f"{gateway}\x00{correlation_id}")


def new_pair_event(pair: ShadowPair, source: str) -> PairEvent:
    return PairEvent(specversion="1.0", id=str(pair_id_of(pair.gateway, pair.correlation_id)), source=source,
                     type=RECORD_SHADOW_PAIR, data=pair, time=pair.event_time,
                     datacontenttype="application/json")


_ENCODER: Final = msgspec.json.Encoder()


def encode_pair(pair: ShadowPair, source: str) -> bytes:
    return _ENCODER.encode(new_pair_event(pair, source))


PAIR_COLUMNS: Final[tuple[str, ...]] = (
    "pair_id", "event_time", "experiment_id", "phase", "gateway", "correlation_id", "route", "method",
    "primary_backend", "shadow_backend", "secondary_backend", "primary_status", "shadow_status",
    "secondary_status", "status_match", "body_match", "latency_primary_ms", "latency_shadow_ms",
    "latency_diff_ms", "outcome", "noise", "differing_fields", "noise_fields", "shadow_error", "source",
    "source_partition", "source_offset",
)
#: Each ``shadow_pairs`` column's value, by name: an expression of the event ``e``, its pair ``d``,
#: the pair's event time in UTC ``t`` and the record's ``partition`` and ``offset``.
PAIR_VALUES: Final[dict[str, str]] = {
    "pair_id": "pair_id_of(d.gateway, d.correlation_id)", "event_time": "t", "experiment_id": "d.experiment_id",
    "phase": "d.phase", "gateway": "d.gateway", "correlation_id": "d.correlation_id", "route": "d.route",
    "method": "d.method", "primary_backend": "d.primary_backend", "shadow_backend": "d.shadow_backend",
    "secondary_backend": "d.secondary_backend", "primary_status": "d.primary_status",
    "shadow_status": "d.shadow_status", "secondary_status": "d.secondary_status", "status_match": "d.status_match",
    "body_match": "d.body_match", "latency_primary_ms": "d.latency_primary_ms",
    "latency_shadow_ms": "d.latency_shadow_ms", "latency_diff_ms": "d.latency_diff_ms", "outcome": "d.outcome",
    "noise": "d.noise", "differing_fields": "list(d.differing_fields)", "noise_fields": "list(d.noise_fields)",
    "shadow_error": "d.shadow_error", "source": "e.source", "source_partition": "partition",
    "source_offset": "offset",
}
_row: Final = compile_row("shadow_pairs", PAIR_COLUMNS, PAIR_VALUES, "e, d, t, partition, offset",
                          {"pair_id_of": pair_id_of})
#: Positions in a ``shadow_pairs`` row of the pair id, the event time and the record's partition and offset.
PAIR_ID, PAIR_TIME, PAIR_PARTITION, PAIR_OFFSET = (
    PAIR_COLUMNS.index(c) for c in ("pair_id", "event_time", "source_partition", "source_offset"))


def pair_row(e: PairEvent, partition: int = -1, offset: int = -1) -> tuple:
    """A ``shadow_pairs`` row (``PAIR_COLUMNS`` order, built by name); ``partition`` and ``offset``:
    the record's on the pairs topic (-1: unknown)."""
    d = e.data
    return _row(e, d, d.event_time.astimezone(UTC), partition, offset)


_DECODER: Final = msgspec.json.Decoder(PairEvent)
#: The Float32 columns of ``shadow_pairs``, by position in a row.
_FLOAT32: Final = {PAIR_COLUMNS.index(c): c for c in ("latency_primary_ms", "latency_shadow_ms", "latency_diff_ms")}


def _one(value: bytes, m: RawMessage, index: int, rows: list, invalid: list) -> None:
    try:
        rows.append(pair_row(_DECODER.decode(value), m[1], m[2]))
    except msgspec.ValidationError as exc:
        invalid.append(InvalidRecord("schema: " + str(exc).replace("`", "")[:240], m[0], m[1], m[2], index=index))
    except msgspec.DecodeError as exc:
        invalid.append(InvalidRecord(f"not JSON: {json_error(value, exc)}", m[0], m[1], m[2], index=index))


def decode_pairs(messages: Sequence[RawMessage], max_bytes: int, limits: Limits | None = None,
                 now: float | None = None) -> DecodedBatch:
    """``shadow_pairs`` rows (``PAIR_COLUMNS`` order) from pair records, single events or batches.

    Never raises: a record that is empty, oversized, too deeply nested, not JSON or not a pair, a
    pair whose event time is outside the window of ``limits`` (see ``hub.records.decode``) and a
    latency too large for its Float32 column become ``InvalidRecord``s.
    """
    return decode_cloudevents(messages, max_bytes, _one, limits=limits, now=now, time_at=PAIR_TIME,
                              float32=_FLOAT32)
