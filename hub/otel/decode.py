"""OTLP from Kafka, as the OpenTelemetry Collector's Kafka exporter writes it, to ClickHouse rows.

One Kafka record holds one whole export request: an ``ExportTraceServiceRequest``,
``ExportMetricsServiceRequest`` or ``ExportLogsServiceRequest`` (wire-identical to ``TracesData``,
``MetricsData``, ``LogsData``), either serialized protobuf (encoding ``otlp_proto``) or OTLP/JSON
(``otlp_json``: the protobuf JSON mapping with lowerCamelCase names, trace and span ids as hex,
enums as integers, 64-bit integers as strings or numbers). ``auto`` takes a value whose first
non-blank byte is ``{`` for JSON, anything else for protobuf.

Rows follow the tables of the Collector's ClickHouse exporter (``otel_traces``, ``otel_logs``,
``otel_metrics_*``; ``schemas/clickhouse/0010..0012``) column for column, plus ``ExperimentId`` and
``ExperimentPhase`` taken from the ``experiment.id`` / ``experiment.phase`` attribute of the span,
log record or data point, else of the resource, else ''. Attribute values are converted the way
the exporter does (pdata ``Value.AsString``): strings as they are, integers in decimal, doubles in
the shortest round-trip form (ECMAScript number formatting, ``1`` not ``1.0``), booleans
``true``/``false``, bytes base64, arrays and key-value lists as compact JSON (keys sorted).
Timestamps are integers of nanoseconds since the epoch (``DateTime64(9)`` ticks).

Never raises for bad input: a record that cannot be used becomes an ``InvalidRecord`` whose
reason starts with ``empty value``, ``oversized``, ``too deeply nested``, ``not protobuf`` or
``not OTLP JSON``; the records around it still decode. The limits (``hub.records.decode.Limits``):
OTLP/JSON nested deeper than ``max_depth`` arrays/objects is refused before it is parsed, and so
is an attribute value or log body whose arrays/key-value lists nest deeper than ``max_depth``
(protobuf's own decoder stops at 100 message levels). Every nanosecond timestamp must fit its
``DateTime64(9)`` column, and each row's own time (span start, log time, data point time) must
lie in the time window; the rows of a record that do not are left out and the record is
reported once (``timestamp out of range: ...``, index -1) while its other rows are stored. NaN
and infinities are kept as they are (the Float64 columns hold them).

The protobuf path is the hot one: one ``ParseFromString`` (upb, in C) per record, then a tight
loop building tuples. A row is built by column name: ``SPAN_VALUES``, ``LOG_VALUES`` and
``METRIC_VALUES`` give each column's value, and the table's column constant the order, compiled
into one tuple display per table when this module is imported (``hub.records.rows``); reordering a
column constant moves its values with it. The JSON path parses with orjson, turns hex ids into
base64 and lets ``json_format.ParseDict`` build the same message, so both encodings share one row
builder.
"""

from __future__ import annotations

import base64
import contextvars
import gc
import math
from itertools import repeat
from operator import itemgetter
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Callable, Final, Sequence

import orjson
from google.protobuf import json_format
from google.protobuf.message import DecodeError, Message
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from hub.errors import InvalidRecord
from hub.names import ATTR_EXPERIMENT_ID, ATTR_EXPERIMENT_PHASE
from hub.records.decode import (
    COLUMN_RANGE,
    NANOS_MAX,
    DecodedBatch,
    Limits,
    RawMessage,
    TimeWindow,
    depth_reason,
    too_deep,
)
from hub.records.rows import compile_row

__all__ = [
    "DEFAULT_TOPICS",
    "ENCODINGS",
    "TRACE_COLUMNS",
    "LOG_COLUMNS",
    "GAUGE_COLUMNS",
    "SUM_COLUMNS",
    "HISTOGRAM_COLUMNS",
    "EXP_HISTOGRAM_COLUMNS",
    "SUMMARY_COLUMNS",
    "METRIC_TABLES",
    "MetricsBatch",
    "MetricTables",
    "decode_spans",
    "decode_logs",
    "decode_metrics",
    "attribute_map",
    "any_value_string",
]

#: The Collector's Kafka exporter's default topics, by signal.
DEFAULT_TOPICS: Final = {"traces": "otlp_spans", "metrics": "otlp_metrics", "logs": "otlp_logs"}
#: Accepted values of ``encoding``.
ENCODINGS: Final = ("otlp_proto", "otlp_json", "auto")

SERVICE_NAME: Final = "service.name"

#: Columns of ``{db}.otel_traces`` in insert order.
TRACE_COLUMNS: Final[tuple[str, ...]] = (
    "Timestamp", "TraceId", "SpanId", "ParentSpanId", "TraceState", "SpanName", "SpanKind",
    "ServiceName", "ResourceAttributes", "ScopeName", "ScopeVersion", "SpanAttributes", "Duration",
    "StatusCode", "StatusMessage",
    "Events.Timestamp", "Events.Name", "Events.Attributes",
    "Links.TraceId", "Links.SpanId", "Links.TraceState", "Links.Attributes",
    "ExperimentId", "ExperimentPhase",
)

#: Columns of ``{db}.otel_logs`` in insert order (``TimestampTime`` is left to its default).
LOG_COLUMNS: Final[tuple[str, ...]] = (
    "Timestamp", "TraceId", "SpanId", "TraceFlags", "SeverityText", "SeverityNumber", "ServiceName",
    "Body", "ResourceSchemaUrl", "ResourceAttributes", "ScopeSchemaUrl", "ScopeName", "ScopeVersion",
    "ScopeAttributes", "LogAttributes", "EventName", "ExperimentId", "ExperimentPhase",
)

_METRIC_HEAD: Final = (
    "ResourceAttributes", "ResourceSchemaUrl", "ScopeName", "ScopeVersion", "ScopeAttributes",
    "ScopeDroppedAttrCount", "ScopeSchemaUrl", "ServiceName", "MetricName", "MetricDescription",
    "MetricUnit", "Attributes", "StartTimeUnix", "TimeUnix",
)
_EXEMPLARS: Final = (
    "Exemplars.FilteredAttributes", "Exemplars.TimeUnix", "Exemplars.Value", "Exemplars.SpanId",
    "Exemplars.TraceId",
)
_EXPERIMENT: Final = ("ExperimentId", "ExperimentPhase")

#: Columns of ``{db}.otel_metrics_gauge`` in insert order.
GAUGE_COLUMNS: Final[tuple[str, ...]] = _METRIC_HEAD + ("Value", "Flags") + _EXEMPLARS + _EXPERIMENT
#: Columns of ``{db}.otel_metrics_sum`` in insert order.
SUM_COLUMNS: Final[tuple[str, ...]] = (
    _METRIC_HEAD + ("Value", "Flags") + _EXEMPLARS + ("AggregationTemporality", "IsMonotonic") + _EXPERIMENT
)
#: Columns of ``{db}.otel_metrics_histogram`` in insert order.
HISTOGRAM_COLUMNS: Final[tuple[str, ...]] = (
    _METRIC_HEAD + ("Count", "Sum", "BucketCounts", "ExplicitBounds") + _EXEMPLARS
    + ("Flags", "Min", "Max", "AggregationTemporality") + _EXPERIMENT
)
#: Columns of ``{db}.otel_metrics_exponential_histogram`` in insert order.
EXP_HISTOGRAM_COLUMNS: Final[tuple[str, ...]] = (
    _METRIC_HEAD
    + ("Count", "Sum", "Scale", "ZeroCount", "PositiveOffset", "PositiveBucketCounts",
       "NegativeOffset", "NegativeBucketCounts")
    + _EXEMPLARS + ("Flags", "Min", "Max", "AggregationTemporality") + _EXPERIMENT
)
#: Columns of ``{db}.otel_metrics_summary`` in insert order.
SUMMARY_COLUMNS: Final[tuple[str, ...]] = (
    _METRIC_HEAD + ("Count", "Sum", "ValueAtQuantiles.Quantile", "ValueAtQuantiles.Value", "Flags")
    + _EXPERIMENT
)

#: ``MetricsBatch`` attribute -> (table, columns).
METRIC_TABLES: Final[dict[str, tuple[str, tuple[str, ...]]]] = {
    "gauge": ("otel_metrics_gauge", GAUGE_COLUMNS),
    "sum": ("otel_metrics_sum", SUM_COLUMNS),
    "histogram": ("otel_metrics_histogram", HISTOGRAM_COLUMNS),
    "exponential_histogram": ("otel_metrics_exponential_histogram", EXP_HISTOGRAM_COLUMNS),
    "summary": ("otel_metrics_summary", SUMMARY_COLUMNS),
}


def _no_sources() -> dict[str, list[tuple[int, int]]]:
    return {kind: [] for kind in METRIC_TABLES}


@dataclass(slots=True)
class MetricsBatch:
    """Rows for each metric table (in the column order of ``METRIC_TABLES``) and the unusable records.

    ``sources`` maps each kind (``gauge``, ``sum``, ...) to a list parallel to that kind's rows:
    ``(offset, index)``, the Kafka record's offset and the row's position among the rows that record
    gave for that table (see ``DecodedBatch``).
    """

    gauge: list[tuple] = field(default_factory=list)
    sum: list[tuple] = field(default_factory=list)
    histogram: list[tuple] = field(default_factory=list)
    exponential_histogram: list[tuple] = field(default_factory=list)
    summary: list[tuple] = field(default_factory=list)
    invalid: list[InvalidRecord] = field(default_factory=list)
    sources: dict[str, list[tuple[int, int]]] = field(default_factory=_no_sources)

    def tables(self) -> list[tuple[str, tuple[str, ...], list[tuple]]]:
        """``(table, columns, rows)`` for every metric table, empty ones included."""
        return [(table, columns, getattr(self, kind)) for kind, (table, columns) in METRIC_TABLES.items()]

    def table_sources(self) -> list[list[tuple[int, int]]]:
        """The ``sources`` of every table, in the order of ``tables()``."""
        return [self.sources[kind] for kind in METRIC_TABLES]

    def table_batch(self) -> "MetricTables":
        """The batch as the metrics sink stores it: ``tables()``, their sources, the unusable records."""
        return MetricTables(tables=self.tables(), invalid=self.invalid, sources=self.table_sources())

    def as_decoded(self, kind: str, with_invalid: bool = True) -> DecodedBatch:
        """One table's rows as a ``DecodedBatch`` (for a sink that stores one table)."""
        return DecodedBatch(getattr(self, kind), list(self.invalid) if with_invalid else [],
                            self.sources[kind])

    @property
    def row_count(self) -> int:
        return (len(self.gauge) + len(self.sum) + len(self.histogram)
                + len(self.exponential_histogram) + len(self.summary))


@dataclass
class MetricTables:
    """A decoded batch that fills several tables (what the metrics sink stores).

    ``tables`` is ``[(table, columns, rows)]``; ``sources`` is one list per entry of ``tables``, in
    the same order, each parallel to that table's rows: ``(offset, index)`` as in ``MetricsBatch``.
    ``rows`` is always empty (there is no single table).
    """

    tables: list = field(default_factory=list)
    invalid: list = field(default_factory=list)
    sources: list = field(default_factory=list)
    rows: list = field(default_factory=list)


# ---- value conversion (pdata Value.AsString) -------------------------------------------------

#: ``SpanKind`` and ``Status.code`` numbers to the names the exporter stores (others: '').
_SPAN_KIND: Final = dict(enumerate(("Unspecified", "Internal", "Server", "Client", "Producer", "Consumer")))
_STATUS_CODE: Final = dict(enumerate(("Unset", "Ok", "Error")))
_HTML_ESCAPES: Final = (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"),
                        ("\u2028", "\\u2028"), ("\u2029", "\\u2029"))


def format_double(f: float) -> str:
    """A double as Go's pdata prints it: the shortest round-trip form, ECMAScript style.

    ``1.0`` -> ``1``, ``0.5`` -> ``0.5``, ``1e-07`` -> ``1e-7``, ``1e21`` -> ``1e+21``.
    NaN and infinities (which Go's JSON cannot print) become ``NaN``, ``+Inf``, ``-Inf``.
    """
    if f != f:
        return "NaN"
    if f in (math.inf, -math.inf):
        return "+Inf" if f > 0 else "-Inf"
    a = abs(f)
    if a < 9007199254740992.0 and f.is_integer():  # below 2**53 every integer is exact
        return "-0" if f == 0 and math.copysign(1.0, f) < 0 else str(int(f))
    r = repr(f)
    if 1e-6 <= a < 1e21:
        if "e" in r:
            return format(Decimal(r), "f")
        return r[:-2] if r.endswith(".0") else r
    if "e" not in r:  # pragma: no cover - repr always uses an exponent outside that range
        return r
    mantissa, exponent = r.split("e")
    sign = exponent[0] if exponent[0] in "+-" else "+"
    return f"{mantissa}e{sign}{exponent.lstrip('+-').lstrip('0') or '0'}"


def _json_string(s: str) -> str:
    out = orjson.dumps(s).decode()
    if "<" in out or ">" in out or "&" in out or "\u2028" in out or "\u2029" in out:
        for raw, escaped in _HTML_ESCAPES:
            out = out.replace(raw, escaped)
    return out


#: How deep arrays and key-value lists may nest in one AnyValue (set for the duration of a decode).
_MAX_DEPTH: Final = contextvars.ContextVar("otlp_max_depth", default=64)


class TooDeep(ValueError):
    """An AnyValue whose arrays/key-value lists nest deeper than the limit."""


def _any_json(v: Any, depth: int = 1) -> str:
    """An AnyValue as Go's ``json.Marshal(value.AsRaw())`` writes it."""
    which = v.WhichOneof("value")
    if which == "string_value":
        return _json_string(v.string_value)
    if which == "int_value":
        return str(v.int_value)
    if which == "double_value":
        d = v.double_value
        return "null" if d != d or d in (math.inf, -math.inf) else format_double(d)
    if which == "bool_value":
        return "true" if v.bool_value else "false"
    if which == "bytes_value":
        return '"' + base64.b64encode(v.bytes_value).decode("ascii") + '"'
    if which == "array_value" or which == "kvlist_value":
        limit = _MAX_DEPTH.get()
        if depth > limit:
            raise TooDeep(depth_reason(limit))
        if which == "array_value":
            return "[" + ",".join([_any_json(x, depth + 1) for x in v.array_value.values]) + "]"
        items = {kv.key: kv.value for kv in v.kvlist_value.values}
        return "{" + ",".join([_json_string(k) + ":" + _any_json(items[k], depth + 1) for k in sorted(items)]) + "}"
    return "null"


def any_value_string(v: Any) -> str:
    """An AnyValue as a string, the way the exporter stores attribute values and log bodies."""
    which = v.WhichOneof("value")
    if which == "string_value":
        return v.string_value
    if which == "int_value":
        return str(v.int_value)
    if which == "double_value":
        return format_double(v.double_value)
    if which == "bool_value":
        return "true" if v.bool_value else "false"
    if which == "bytes_value":
        return base64.b64encode(v.bytes_value).decode("ascii")
    if which is None:
        return ""
    return _any_json(v)


def attribute_map(kvs: Any) -> dict[str, str]:
    """Repeated ``KeyValue`` to ``Map(String, String)``: see ``any_value_string``."""
    out: dict[str, str] = {}
    for kv in kvs:
        v = kv.value
        sv = v.string_value  # the common case first: one field read, no WhichOneof
        if sv:
            out[kv.key] = sv
            continue
        which = v.WhichOneof("value")
        if which == "string_value":
            out[kv.key] = ""
        elif which == "int_value":
            out[kv.key] = str(v.int_value)
        elif which == "bool_value":
            out[kv.key] = "true" if v.bool_value else "false"
        elif which == "double_value":
            out[kv.key] = format_double(v.double_value)
        else:
            out[kv.key] = any_value_string(v)
    return out


_EMPTY_MAP: Final[dict[str, str]] = {}


def _attrs(kvs: Any) -> dict[str, str]:
    return attribute_map(kvs) if kvs else _EMPTY_MAP


def _hex_id(b: bytes) -> str:
    """Trace/span id to hex; an absent or all-zero id is '' (the exporter's ``...ToHexOrEmptyString``)."""
    return b.hex() if b and b.strip(b"\x00") else ""


# ---- row builders (one parsed request -> rows) -------------------------------------------------


#: Names the value expressions below may use, besides their parameters.
_ROW_NAMESPACE: Final = {
    "hex_id": _hex_id, "any_value_string": any_value_string, "SPAN_KIND": _SPAN_KIND, "STATUS_CODE": _STATUS_CODE,
    "EXP_ID": ATTR_EXPERIMENT_ID, "EXP_PHASE": ATTR_EXPERIMENT_PHASE,
}

#: Each ``otel_traces`` column's value, by name: an expression of the span ``s``, its start and end
#: (ns), its ``status``, its attributes ``a``, its events' and links' arrays (``ev_*``, ``ln_*``)
#: and what it shares with its resource and scope.
SPAN_VALUES: Final[dict[str, str]] = {
    "Timestamp": "start", "TraceId": "hex_id(s.trace_id)", "SpanId": "hex_id(s.span_id)",
    "ParentSpanId": "hex_id(s.parent_span_id)", "TraceState": "s.trace_state", "SpanName": "s.name",
    "SpanKind": "SPAN_KIND.get(s.kind, '')", "ServiceName": "service", "ResourceAttributes": "rattrs",
    "ScopeName": "scope_name", "ScopeVersion": "scope_version", "SpanAttributes": "a",
    "Duration": "end - start if end > start else 0", "StatusCode": "STATUS_CODE.get(status.code, '')",
    "StatusMessage": "status.message",
    "Events.Timestamp": "ev_t", "Events.Name": "ev_n", "Events.Attributes": "ev_a",
    "Links.TraceId": "ln_t", "Links.SpanId": "ln_s", "Links.TraceState": "ln_ts", "Links.Attributes": "ln_a",
    "ExperimentId": "a.get(EXP_ID) or r_exp", "ExperimentPhase": "a.get(EXP_PHASE) or r_phase",
}
_span_row: Final = compile_row(
    "otel_traces", TRACE_COLUMNS, SPAN_VALUES, "s, start, end, status, a, ev_t, ev_n, ev_a, ln_t, ln_s, ln_ts, ln_a, "
    "service, rattrs, scope_name, scope_version, r_exp, r_phase", _ROW_NAMESPACE)

#: Each ``otel_logs`` column's value, by name: an expression of the log record ``r``, its
#: attributes ``a`` and ``body``, and what it shares with its resource and scope.
LOG_VALUES: Final[dict[str, str]] = {
    "Timestamp": "r.time_unix_nano or r.observed_time_unix_nano", "TraceId": "hex_id(r.trace_id)",
    "SpanId": "hex_id(r.span_id)", "TraceFlags": "r.flags & 0xFF", "SeverityText": "r.severity_text",
    "SeverityNumber": "r.severity_number & 0xFF", "ServiceName": "service",
    "Body": "body.string_value if body.WhichOneof('value') == 'string_value' else any_value_string(body)",
    "ResourceSchemaUrl": "r_url", "ResourceAttributes": "rattrs", "ScopeSchemaUrl": "s_url",
    "ScopeName": "scope_name", "ScopeVersion": "scope_version", "ScopeAttributes": "scope_attrs",
    "LogAttributes": "a", "EventName": "r.event_name",
    "ExperimentId": "a.get(EXP_ID) or r_exp", "ExperimentPhase": "a.get(EXP_PHASE) or r_phase",
}
_log_row: Final = compile_row(
    "otel_logs", LOG_COLUMNS, LOG_VALUES, "r, a, body, service, rattrs, r_url, s_url, scope_name, scope_version, "
    "scope_attrs, r_exp, r_phase", _ROW_NAMESPACE)

#: The values the ``otel_metrics_*`` tables share, by column name: expressions of the data point
#: ``dp`` and its attributes ``a``, the point's exemplars' arrays (``ex_*``; ``None`` for a
#: summary, whose table has no exemplars) and what it shares with its metric, resource and scope.
_METRIC_HEAD_VALUES: Final[dict[str, str]] = {
    "ResourceAttributes": "rattrs", "ResourceSchemaUrl": "r_url", "ScopeName": "scope_name",
    "ScopeVersion": "scope_version", "ScopeAttributes": "scope_attrs", "ScopeDroppedAttrCount": "scope_dropped",
    "ScopeSchemaUrl": "s_url", "ServiceName": "service", "MetricName": "name",
    "MetricDescription": "description", "MetricUnit": "unit", "Attributes": "a",
    "StartTimeUnix": "dp.start_time_unix_nano", "TimeUnix": "dp.time_unix_nano",
    "Exemplars.FilteredAttributes": "ex_a", "Exemplars.TimeUnix": "ex_t", "Exemplars.Value": "ex_v",
    "Exemplars.SpanId": "ex_s", "Exemplars.TraceId": "ex_tr",
    "ExperimentId": "a.get(EXP_ID) or r_exp", "ExperimentPhase": "a.get(EXP_PHASE) or r_phase",
}
_METRIC_PARAMS: Final = ("dp, a, ex_a, ex_t, ex_v, ex_s, ex_tr, name, description, unit, temporality, monotonic, "
                         "service, rattrs, r_url, scope_name, scope_version, scope_attrs, scope_dropped, s_url, "
                         "r_exp, r_phase")
_NO_EXEMPLARS: Final = ("Exemplars.FilteredAttributes", "Exemplars.TimeUnix", "Exemplars.Value", "Exemplars.SpanId",
                        "Exemplars.TraceId")
_DISTRIBUTION: Final = {"Count": "dp.count", "Sum": "dp.sum", "Flags": "dp.flags", "Min": "dp.min", "Max": "dp.max",
                        "AggregationTemporality": "temporality"}
#: Each ``otel_metrics_*`` column's value, by kind and column name (``name``, ``description``,
#: ``unit``: the metric's; ``temporality``, ``monotonic``: its sum's or histogram's).
METRIC_VALUES: Final[dict[str, dict[str, str]]] = {
    "gauge": {**_METRIC_HEAD_VALUES, "Flags": "dp.flags",
              "Value": "float(dp.as_int) if dp.WhichOneof('value') == 'as_int' else dp.as_double"},
    "sum": {**_METRIC_HEAD_VALUES, "Flags": "dp.flags",
            "Value": "float(dp.as_int) if dp.WhichOneof('value') == 'as_int' else dp.as_double",
            "AggregationTemporality": "temporality", "IsMonotonic": "monotonic"},
    "histogram": {**_METRIC_HEAD_VALUES, **_DISTRIBUTION, "BucketCounts": "list(dp.bucket_counts)",
                  "ExplicitBounds": "list(dp.explicit_bounds)"},
    "exponential_histogram": {
        **_METRIC_HEAD_VALUES, **_DISTRIBUTION, "Scale": "dp.scale", "ZeroCount": "dp.zero_count",
        "PositiveOffset": "dp.positive.offset", "PositiveBucketCounts": "list(dp.positive.bucket_counts)",
        "NegativeOffset": "dp.negative.offset", "NegativeBucketCounts": "list(dp.negative.bucket_counts)"},
    "summary": {**{c: v for c, v in _METRIC_HEAD_VALUES.items() if c not in _NO_EXEMPLARS},
                "Count": "dp.count", "Sum": "dp.sum", "Flags": "dp.flags",
                "ValueAtQuantiles.Quantile": "[q.quantile for q in dp.quantile_values]",
                "ValueAtQuantiles.Value": "[q.value for q in dp.quantile_values]"},
}
#: The metric kinds with an aggregation temporality.
_TEMPORAL: Final = frozenset({"sum", "histogram", "exponential_histogram"})
_metric_row: Final = {kind: compile_row(table, columns, METRIC_VALUES[kind], _METRIC_PARAMS, _ROW_NAMESPACE)
                      for kind, (table, columns) in METRIC_TABLES.items()}


def _span_rows(req: Any, rows: list) -> None:
    exp_id, exp_phase = ATTR_EXPERIMENT_ID, ATTR_EXPERIMENT_PHASE
    hex_id, attrs, row = _hex_id, _attrs, _span_row
    append = rows.append
    for rs in req.resource_spans:
        rattrs = attrs(rs.resource.attributes)
        service = rattrs.get(SERVICE_NAME, "")
        r_exp = rattrs.get(exp_id, "")
        r_phase = rattrs.get(exp_phase, "")
        for ss in rs.scope_spans:
            scope = ss.scope
            scope_name = scope.name
            scope_version = scope.version
            for s in ss.spans:
                events = s.events
                if events:
                    ev_t = [e.time_unix_nano for e in events]
                    ev_n = [e.name for e in events]
                    ev_a = [attrs(e.attributes) for e in events]
                else:
                    ev_t, ev_n, ev_a = [], [], []
                links = s.links
                if links:
                    ln_t = [hex_id(x.trace_id) for x in links]
                    ln_s = [hex_id(x.span_id) for x in links]
                    ln_ts = [x.trace_state for x in links]
                    ln_a = [attrs(x.attributes) for x in links]
                else:
                    ln_t, ln_s, ln_ts, ln_a = [], [], [], []
                append(row(s, s.start_time_unix_nano, s.end_time_unix_nano, s.status, attrs(s.attributes),
                           ev_t, ev_n, ev_a, ln_t, ln_s, ln_ts, ln_a,
                           service, rattrs, scope_name, scope_version, r_exp, r_phase))


def _log_rows(req: Any, rows: list) -> None:
    exp_id, exp_phase = ATTR_EXPERIMENT_ID, ATTR_EXPERIMENT_PHASE
    attrs, row = _attrs, _log_row
    append = rows.append
    for rl in req.resource_logs:
        rattrs = attrs(rl.resource.attributes)
        service = rattrs.get(SERVICE_NAME, "")
        r_exp = rattrs.get(exp_id, "")
        r_phase = rattrs.get(exp_phase, "")
        r_url = rl.schema_url
        for sl in rl.scope_logs:
            scope = sl.scope
            scope_name = scope.name
            scope_version = scope.version
            scope_attrs = attrs(scope.attributes)
            s_url = sl.schema_url
            for r in sl.log_records:
                append(row(r, attrs(r.attributes), r.body, service, rattrs, r_url, s_url, scope_name, scope_version,
                           scope_attrs, r_exp, r_phase))


_ZERO_TRACE: Final = bytes(16)
_ZERO_SPAN: Final = bytes(8)


def _exemplars(exemplars: Any) -> tuple[list, list, list, list, list]:
    """The ``Exemplars.*`` arrays: filtered attributes, times, values, span ids, trace ids (ids in
    hex, all zeros when absent, as the exporter writes them)."""
    if not exemplars:
        return [], [], [], [], []
    attrs_, times, values, span_ids, trace_ids = [], [], [], [], []
    for e in exemplars:
        attrs_.append(_attrs(e.filtered_attributes))
        times.append(e.time_unix_nano)
        values.append(float(e.as_int) if e.WhichOneof("value") == "as_int" else e.as_double)
        span_ids.append((e.span_id or _ZERO_SPAN).hex())
        trace_ids.append((e.trace_id or _ZERO_TRACE).hex())
    return attrs_, times, values, span_ids, trace_ids


def _metric_rows(req: Any, batch: MetricsBatch) -> None:
    exp_id, exp_phase = ATTR_EXPERIMENT_ID, ATTR_EXPERIMENT_PHASE
    attrs, exemplars = _attrs, _exemplars
    builders = _metric_row
    for rm in req.resource_metrics:
        rattrs = attrs(rm.resource.attributes)
        service = rattrs.get(SERVICE_NAME, "")
        r_exp = rattrs.get(exp_id, "")
        r_phase = rattrs.get(exp_phase, "")
        r_url = rm.schema_url
        for sm in rm.scope_metrics:
            scope = sm.scope
            scope_name, scope_version, scope_dropped = scope.name, scope.version, scope.dropped_attributes_count
            scope_attrs = attrs(scope.attributes)
            s_url = sm.schema_url
            for m in sm.metrics:
                kind = m.WhichOneof("data")
                if kind not in builders:
                    continue
                row = builders[kind]
                data = getattr(m, kind)
                append = getattr(batch, kind).append
                name, description, unit = m.name, m.description, m.unit
                temporality = data.aggregation_temporality if kind in _TEMPORAL else 0
                monotonic = kind == "sum" and data.is_monotonic
                with_exemplars = kind != "summary"
                ex_a = ex_t = ex_v = ex_s = ex_tr = None
                for dp in data.data_points:
                    if with_exemplars:
                        ex_a, ex_t, ex_v, ex_s, ex_tr = exemplars(dp.exemplars)
                    append(row(dp, attrs(dp.attributes), ex_a, ex_t, ex_v, ex_s, ex_tr, name, description, unit,
                               temporality, monotonic, service, rattrs, r_url, scope_name, scope_version,
                               scope_attrs, scope_dropped, s_url, r_exp, r_phase))


# ---- parsing ------------------------------------------------------------------------------------

_ID_KEYS: Final = frozenset({"traceId", "spanId", "parentSpanId", "trace_id", "span_id", "parent_span_id"})
_MAX_SHOWN: Final = 160


def _hex_ids_to_base64(node: Any) -> None:
    """OTLP/JSON writes ids as hex; the protobuf JSON mapping reads bytes as base64. Fix in place.

    Message field names only ever appear as dict keys (attribute keys are values of ``key``), so
    a walk over every dict is safe.
    """
    if isinstance(node, dict):
        for key, value in node.items():
            if key in _ID_KEYS and isinstance(value, str):
                node[key] = base64.b64encode(bytes.fromhex(value)).decode("ascii") if value else ""
            elif isinstance(value, (dict, list)):
                _hex_ids_to_base64(value)
    elif isinstance(node, list):
        for value in node:
            if isinstance(value, (dict, list)):
                _hex_ids_to_base64(value)


def _short(exc: BaseException) -> str:
    text = str(exc).replace("\n", " ") or type(exc).__name__
    return text if len(text) <= _MAX_SHOWN else text[:_MAX_SHOWN] + "..."


def _parse(value: bytes, encoding: str, message_type: type[Message], top_field: str,
           json_top: str, max_depth: int = 64) -> tuple[Message | None, str]:
    """The parsed request, or ``None`` and the reason it is not usable."""
    if encoding == "auto":
        first = value[:1]
        if first in b" \t\r\n":
            first = value.lstrip()[:1]
        encoding = "otlp_json" if first == b"{" else "otlp_proto"
    req = message_type()
    if encoding == "otlp_proto":
        try:
            req.ParseFromString(value)
        except (DecodeError, ValueError, RuntimeError) as exc:
            if "MaxDepth" in str(exc):
                return None, f"too deeply nested: over protobuf's 100 message levels ({len(value)} bytes)"
            return None, f"not protobuf: {_short(exc)} ({len(value)} bytes)"
        if not getattr(req, top_field):
            return None, f"not protobuf: no {top_field} in {len(value)} bytes (not an OTLP {message_type.__name__})"
        return req, ""
    if too_deep(value, max_depth):
        return None, depth_reason(max_depth)
    try:
        doc = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        return None, f"not OTLP JSON: {_short(exc)}"
    if not isinstance(doc, dict) or not isinstance(doc.get(json_top, doc.get(top_field)), list):
        shown = type(doc).__name__ if not isinstance(doc, dict) else "keys " + ", ".join(list(doc)[:5])
        return None, f"not OTLP JSON: no {json_top} array ({shown})"
    try:
        _hex_ids_to_base64(doc)
        json_format.ParseDict(doc, req, ignore_unknown_fields=True)
    except Exception as exc:  # noqa: BLE001 - ParseError, ValueError, TypeError, OverflowError ...: never raise
        return None, f"not OTLP JSON: {_short(exc)}"
    return req, ""


def _check_encoding(encoding: str) -> None:
    if encoding not in ENCODINGS:
        raise ValueError(f"unknown OTLP encoding {encoding!r}; expected one of {', '.join(ENCODINGS)}")


class _Times:
    """Where a table's nanosecond timestamps are in its rows: the row's own time (held to the time
    window), other scalar times and arrays of times (held to what ``DateTime64(9)`` holds)."""

    __slots__ = ("noun", "own", "scalars", "arrays")

    def __init__(self, noun: str, columns: tuple[str, ...], own: str, scalars: tuple[str, ...] = (),
                 arrays: tuple[str, ...] = ()):
        self.noun = noun
        self.own = columns.index(own)
        self.scalars = tuple(columns.index(c) for c in scalars)
        self.arrays = tuple(columns.index(c) for c in arrays)

    def fault(self, row: tuple, window: TimeWindow) -> str:
        """Why ``row`` cannot be stored, or ''."""
        t = row[self.own]
        if not window.lo_ns <= t <= window.hi_ns:
            return window.reason_ns(self.noun + " time", t)
        for i in self.scalars:
            if row[i] > NANOS_MAX:
                return window.reason_ns(self.noun + " start time", row[i])
        for i in self.arrays:
            if row[i] and max(row[i]) > NANOS_MAX:
                return window.reason_ns(self.noun + " event/exemplar time", max(row[i]))
        return ""

    def clean(self, rows: list, start: int, window: TimeWindow) -> bool:
        """True when every row from ``start`` on fits (the common case, checked without a loop in Python)."""
        new = rows[start:]
        own = list(map(itemgetter(self.own), new))
        if min(own) < window.lo_ns or max(own) > window.hi_ns:
            return False
        for i in self.scalars:
            if max(map(itemgetter(i), new)) > NANOS_MAX:
                return False
        for i in self.arrays:
            lists = list(filter(None, map(itemgetter(i), new)))
            if lists and max(map(max, lists)) > NANOS_MAX:
                return False
        return True


_SPAN_TIMES: Final = _Times("span", TRACE_COLUMNS, "Timestamp", arrays=("Events.Timestamp",))
_LOG_TIMES: Final = _Times("log record", LOG_COLUMNS, "Timestamp")
_METRIC_TIMES: Final = {kind: _Times("data point", columns, "TimeUnix", ("StartTimeUnix",),
                                     ("Exemplars.TimeUnix",) if "Exemplars.TimeUnix" in columns else ())
                        for kind, (_, columns) in METRIC_TABLES.items()}
#: Each ``otel_*`` table -> (its column constant, the time checks of its rows). Every DateTime64
#: column the decoder writes must be one of its checks (``tests/integration/test_otel_time_checks.py``).
TIME_CHECKS: Final[dict[str, tuple[tuple[str, ...], _Times]]] = {
    "otel_traces": (TRACE_COLUMNS, _SPAN_TIMES),
    "otel_logs": (LOG_COLUMNS, _LOG_TIMES),
    **{table: (columns, _METRIC_TIMES[kind]) for kind, (table, columns) in METRIC_TABLES.items()},
}


def _keep_in_window(rows: list, sources: list, start: int, times: _Times, window: TimeWindow,
                    faults: list) -> None:
    """Take the rows from ``start`` on that ``times`` refuses out of ``rows`` (and ``sources``)."""
    if len(rows) == start or times.clean(rows, start, window):
        return
    keep_rows, keep_sources = [], []
    for row, source in zip(rows[start:], sources[start:]):
        fault = times.fault(row, window)
        if fault:
            faults.append(fault)
        else:
            keep_rows.append(row)
            keep_sources.append(source)
    rows[start:] = keep_rows
    sources[start:] = keep_sources


def _decode(messages: Sequence[RawMessage], encoding: str, max_bytes: int, message_type: type[Message],
            top_field: str, json_top: str, build: Callable[[Any, Any], None], sink: Any,
            invalid: list[InvalidRecord], sources: Any, limits: Limits | None, now: float | None) -> None:
    _check_encoding(encoding)
    window = TimeWindow.of(limits, now) if limits is not None else COLUMN_RANGE  # without limits: the columns'
    limits = limits if limits is not None else Limits(max_bytes)
    # Decoding allocates many small objects that all survive (rows, dicts, strings): the cyclic
    # collector would scan them again and again for nothing, which costs a third of the time.
    paused = gc.isenabled()
    if paused:
        gc.disable()
    depth = _MAX_DEPTH.set(limits.max_depth)
    try:
        _decode_records(messages, encoding, min(max_bytes, limits.max_bytes), message_type, top_field, json_top,
                        build, sink, invalid, sources, limits.max_depth, window)
    finally:
        _MAX_DEPTH.reset(depth)
        if paused:
            gc.enable()


def _decode_records(messages: Sequence[RawMessage], encoding: str, max_bytes: int, message_type: type[Message],
                    top_field: str, json_top: str, build: Callable[[Any, Any], None], sink: Any,
                    invalid: list[InvalidRecord], sources: Any, max_depth: int, window: TimeWindow) -> None:
    is_list = isinstance(sink, list)
    times = _SPAN_TIMES if build is _span_rows else _LOG_TIMES
    for m in messages:
        value = m[4]
        if not value:
            invalid.append(InvalidRecord("empty value", m[0], m[1], m[2]))
            continue
        if len(value) > max_bytes:
            invalid.append(InvalidRecord(f"oversized: {len(value)} bytes > {max_bytes}", m[0], m[1], m[2]))
            continue
        try:
            req, reason = _parse(value, encoding, message_type, top_field, json_top, max_depth)
        except Exception as exc:  # noqa: BLE001 - whatever the parser raises, the record is unusable
            req, reason = None, f"not {'OTLP' if encoding == 'auto' else encoding}: {_short(exc)}"
        if req is None:
            invalid.append(InvalidRecord(reason, m[0], m[1], m[2]))
            continue
        mark = _mark(sink)
        try:
            build(req, sink)
        except TooDeep as exc:
            _rollback(sink, mark)
            invalid.append(InvalidRecord(str(exc), m[0], m[1], m[2]))
            continue
        except Exception as exc:  # noqa: BLE001 - a parsed request the builder cannot use: never raise
            _rollback(sink, mark)
            invalid.append(InvalidRecord(f"not OTLP: {_short(exc)}", m[0], m[1], m[2]))
            continue
        offset = m[2]
        faults: list[str] = []
        if is_list:
            added = len(sink) - mark
            if added:
                sources.extend(zip(repeat(offset, added), range(added)))
                _keep_in_window(sink, sources, mark, times, window, faults)
        else:
            for kind, n in zip(METRIC_TABLES, mark):
                rows = getattr(sink, kind)
                added = len(rows) - n
                if added:
                    sources[kind].extend(zip(repeat(offset, added), range(added)))
                    _keep_in_window(rows, sources[kind], n, _METRIC_TIMES[kind], window, faults)
        if faults:
            total = (len(sink) - mark + len(faults)) if is_list else None
            of = f" of {total}" if total is not None else ""
            invalid.append(InvalidRecord(f"{faults[0]} ({len(faults)}{of} rows of the record refused)",
                                         m[0], m[1], m[2]))


def _mark(sink: Any) -> Any:
    if isinstance(sink, list):
        return len(sink)
    return tuple(len(getattr(sink, kind)) for kind in METRIC_TABLES)


def _rollback(sink: Any, mark: Any) -> None:
    if isinstance(sink, list):
        del sink[mark:]
        return
    for kind, n in zip(METRIC_TABLES, mark):
        del getattr(sink, kind)[n:]


def decode_spans(messages: Sequence[RawMessage], encoding: str, max_bytes: int, limits: Limits | None = None,
                 now: float | None = None) -> DecodedBatch:
    """Records of ``otlp_spans`` to ``otel_traces`` rows (``TRACE_COLUMNS`` order), one row per span."""
    batch = DecodedBatch()
    _decode(messages, encoding, max_bytes, ExportTraceServiceRequest, "resource_spans", "resourceSpans",
            _span_rows, batch.rows, batch.invalid, batch.sources, limits, now)
    return batch


def decode_logs(messages: Sequence[RawMessage], encoding: str, max_bytes: int, limits: Limits | None = None,
                now: float | None = None) -> DecodedBatch:
    """Records of ``otlp_logs`` to ``otel_logs`` rows (``LOG_COLUMNS`` order), one row per log record."""
    batch = DecodedBatch()
    _decode(messages, encoding, max_bytes, ExportLogsServiceRequest, "resource_logs", "resourceLogs",
            _log_rows, batch.rows, batch.invalid, batch.sources, limits, now)
    return batch


def decode_metrics(messages: Sequence[RawMessage], encoding: str, max_bytes: int, limits: Limits | None = None,
                   now: float | None = None) -> MetricsBatch:
    """Records of ``otlp_metrics`` to rows of the ``otel_metrics_*`` tables, one row per data point."""
    batch = MetricsBatch()
    _decode(messages, encoding, max_bytes, ExportMetricsServiceRequest, "resource_metrics",
            "resourceMetrics", _metric_rows, batch, batch.invalid, batch.sources, limits, now)
    return batch
