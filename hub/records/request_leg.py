"""Request-leg records: one leg (primary, shadow or canary) of one request through a gateway.

Wire format: a CloudEvents 1.0 envelope in structured JSON mode (``RequestLegEvent``) whose
``data`` is a ``RequestLeg``. The constraints here mirror ``schemas/json/envelope.v1.json`` and
``schemas/json/request_leg.v1.json`` exactly; ``tests/unit/test_schemas_match_models.py`` proves
that they cannot drift apart. Change both or neither; a breaking change is a new ``.v2`` type.

Storage: ``to_row`` turns a decoded event into one row of the ClickHouse table ``requests``
(``schemas/clickhouse/0002_requests.sql``) in ``REQUEST_COLUMNS`` order.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timezone
from typing import Annotated, Final, Literal

import msgspec

from hub.names import RECORD_REQUEST_LEG

__all__ = [
    "Leg",
    "RequestLeg",
    "RequestLegEvent",
    "REQUEST_COLUMNS",
    "DATASCHEMA",
    "EVENT_ID_NAMESPACE",
    "new_event",
    "event_id_of",
    "to_row",
]

UTC: Final = timezone.utc

# ---- constrained scalar types (each one has a twin in the JSON Schema files) --------------
NonEmptyStr = Annotated[str, msgspec.Meta(min_length=1)]
#: RFC 3339 timestamp with an offset (``Z`` or ``+hh:mm``); naive timestamps are rejected.
Timestamp = Annotated[datetime, msgspec.Meta(tz=True)]
#: CloudEvents ``source``: a non-empty URI-reference (RFC 3986 characters only).
SourceUri = Annotated[str, msgspec.Meta(min_length=1, pattern=r"^[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]+$")]
#: Route template such as ``/patients/{id}``: starts with ``/``, no whitespace, query or fragment.
RouteTemplate = Annotated[str, msgspec.Meta(min_length=1, pattern=r"^/[^\s?#]*$")]
#: HTTP method, uppercase (``GET``, ``POST``, ``PROPFIND`` ...).
HttpMethod = Annotated[str, msgspec.Meta(pattern=r"^[A-Z]{1,20}$")]
#: HTTP status; 0 means that no response was received (timeout, connection refused ...).
HttpStatus = Annotated[int, msgspec.Meta(ge=0, le=599)]
#: Bytes on the wire; the bound matches the ClickHouse column type UInt32.
ByteCount = Annotated[int, msgspec.Meta(ge=0, le=4294967295)]
LatencyMs = Annotated[float, msgspec.Meta(ge=0)]

Leg = Literal["primary", "shadow", "canary"]  # same values as hub.names.LEGS


class RequestLeg(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True, gc=False):
    """The ``data`` of a ``dev.gamedayhub.request.leg.v1`` event."""

    correlation_id: NonEmptyStr  # shared by all legs of one request
    leg: Leg
    gateway: NonEmptyStr
    route: RouteTemplate
    method: HttpMethod
    backend: NonEmptyStr
    status: HttpStatus
    latency_ms: LatencyMs
    event_time: Timestamp  # when the leg started
    request_bytes: ByteCount = 0
    response_bytes: ByteCount = 0
    response_hash: str = ""
    error: str = ""
    experiment_id: str = ""
    phase: str = ""


class RequestLegEvent(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True, gc=False):
    """CloudEvents 1.0 envelope (structured JSON mode) carrying one ``RequestLeg``.

    Optional attributes accept JSON ``null`` as "absent". Extension attributes are limited to
    the hub's own (``experimentid``, ``experimentphase``) and the CloudEvents distributed
    tracing extension (``traceparent``, ``tracestate``). Build one with ``new_event``.
    """

    specversion: Literal["1.0"]
    id: NonEmptyStr
    source: SourceUri
    type: Literal["dev.gamedayhub.request.leg.v1"]  # == hub.names.RECORD_REQUEST_LEG
    data: RequestLeg
    time: Timestamp | None = None
    datacontenttype: Literal["application/json"] | None = None
    dataschema: str | None = None
    subject: str | None = None
    experimentid: str | None = None
    experimentphase: str | None = None
    traceparent: str | None = None
    tracestate: str | None = None


assert RECORD_REQUEST_LEG == "dev.gamedayhub.request.leg.v1", "update the Literal in RequestLegEvent"

#: ``dataschema`` value that emitters may set: the ``$id`` of the record's JSON Schema.
DATASCHEMA: Final = "https://gamedayhub.dev/schemas/json/request_leg.v1.json"


def new_event(
    data: RequestLeg,
    *,
    source: str,
    id: str | None = None,
    time: datetime | None = None,
    experimentid: str | None = None,
    experimentphase: str | None = None,
) -> RequestLegEvent:
    """An envelope for ``data`` with ``specversion``, ``type`` and ``datacontenttype`` filled in.

    ``id`` defaults to a random UUID; no validation happens here (it happens when decoding).
    """
    return RequestLegEvent(
        specversion="1.0",
        id=id if id is not None else str(uuid.uuid4()),
        source=source,
        type=RECORD_REQUEST_LEG,
        data=data,
        time=time,
        datacontenttype="application/json",
        experimentid=experimentid,
        experimentphase=experimentphase,
    )


# ---- ClickHouse row ----------------------------------------------------------------------
#: Columns of ``{db}.requests`` in insert order. ``ingest_time`` is left to the column default.
REQUEST_COLUMNS: Final[tuple[str, ...]] = (
    "event_id",
    "event_time",
    "experiment_id",
    "phase",
    "correlation_id",
    "leg",
    "gateway",
    "route",
    "method",
    "backend",
    "status",
    "latency_ms",
    "request_bytes",
    "response_bytes",
    "response_hash",
    "error",
    "source",
)

#: Namespace of the uuid5 used as ``event_id`` when an envelope ``id`` is not itself a UUID.
EVENT_ID_NAMESPACE: Final = uuid.uuid5(uuid.NAMESPACE_URL, "https://gamedayhub.dev/records/event-id")


def event_id_of(envelope_id: str) -> uuid.UUID:
    """The envelope id as a UUID when it is one, else a stable uuid5 of it."""
    try:
        return uuid.UUID(envelope_id)
    except ValueError:
        return uuid.uuid5(EVENT_ID_NAMESPACE, envelope_id)


def to_row(event: RequestLegEvent) -> tuple:
    """One ``requests`` row, in ``REQUEST_COLUMNS`` order."""
    d = event.data
    t = d.event_time
    if t.tzinfo is not UTC:
        t = t.astimezone(UTC)
    try:
        eid = uuid.UUID(event.id)
    except ValueError:
        eid = uuid.uuid5(EVENT_ID_NAMESPACE, event.id)
    return (
        eid,
        t,
        d.experiment_id or event.experimentid or "",
        d.phase or event.experimentphase or "",
        d.correlation_id,
        d.leg,
        d.gateway,
        d.route,
        d.method,
        d.backend,
        d.status,
        d.latency_ms,
        d.request_bytes,
        d.response_bytes,
        d.response_hash,
        d.error,
        event.source,
    )
