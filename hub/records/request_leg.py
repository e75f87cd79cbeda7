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
from typing import Annotated, Any, Callable, Final, Literal

import msgspec

from hub.names import RECORD_REQUEST_LEG
from hub.records.rows import compile_row as compile_row_of

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

#: Positions of the columns in a ``requests`` row, by name: code that reads a row uses these,
#: never a number, so a change of ``REQUEST_COLUMNS`` moves every reader with it.
REQ_EVENT_ID: Final = REQUEST_COLUMNS.index("event_id")
REQ_EVENT_TIME: Final = REQUEST_COLUMNS.index("event_time")
REQ_EXPERIMENT_ID: Final = REQUEST_COLUMNS.index("experiment_id")
REQ_PHASE: Final = REQUEST_COLUMNS.index("phase")
REQ_CORRELATION_ID: Final = REQUEST_COLUMNS.index("correlation_id")
REQ_LEG: Final = REQUEST_COLUMNS.index("leg")
REQ_GATEWAY: Final = REQUEST_COLUMNS.index("gateway")
REQ_ROUTE: Final = REQUEST_COLUMNS.index("route")
REQ_METHOD: Final = REQUEST_COLUMNS.index("method")
REQ_BACKEND: Final = REQUEST_COLUMNS.index("backend")
REQ_STATUS: Final = REQUEST_COLUMNS.index("status")
REQ_LATENCY_MS: Final = REQUEST_COLUMNS.index("latency_ms")
REQ_REQUEST_BYTES: Final = REQUEST_COLUMNS.index("request_bytes")
REQ_RESPONSE_BYTES: Final = REQUEST_COLUMNS.index("response_bytes")
REQ_RESPONSE_HASH: Final = REQUEST_COLUMNS.index("response_hash")
REQ_ERROR: Final = REQUEST_COLUMNS.index("error")
REQ_SOURCE: Final = REQUEST_COLUMNS.index("source")

#: Each column's value, by name, as an expression of the event ``e``, its data ``d``, its event
#: time in UTC ``t`` and its id as a UUID ``eid``.
ROW_VALUES: Final[dict[str, str]] = {
    "event_id": "eid", "event_time": "t",
    "experiment_id": "d.experiment_id or e.experimentid or ''", "phase": "d.phase or e.experimentphase or ''",
    "correlation_id": "d.correlation_id", "leg": "d.leg", "gateway": "d.gateway", "route": "d.route",
    "method": "d.method", "backend": "d.backend", "status": "d.status", "latency_ms": "d.latency_ms",
    "request_bytes": "d.request_bytes", "response_bytes": "d.response_bytes",
    "response_hash": "d.response_hash", "error": "d.error", "source": "e.source",
}


def compile_row(columns: tuple[str, ...]) -> Callable[[Any, Any, datetime, uuid.UUID], tuple]:
    """``row(e, d, t, eid)``: the row of ``columns`` (in that order), built by name and compiled
    once, so building a row costs one tuple display however the columns are ordered."""
    return compile_row_of("requests", columns, ROW_VALUES, "e, d, t, eid")


#: The ``requests`` row of an event, in ``REQUEST_COLUMNS`` order.
row_of = compile_row(REQUEST_COLUMNS)

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
    return row_of(event, d, t, eid)
