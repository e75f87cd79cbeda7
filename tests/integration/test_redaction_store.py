"""Seeded patient-like data in every kind of input: none of it is anywhere in the store afterwards.

A corpus of made-up patients (names, SSNs, MRNs, e-mail addresses, phone numbers, dates of birth)
is placed in request-leg routes, errors and sources (real CloudEvents envelopes through
``decode_request_legs``) and in OTLP spans, logs and metrics made with the OpenTelemetry SDK and
encoded with the OTLP exporter's encoders (attributes, ``url.full`` with a query string, header
attributes, span names and status messages, events, links, log bodies, metric points), decoded
with ``hub.otel.decode``. First the unredacted rows are stored and every seed is found (the search
works); then the tables are emptied, the redacted rows stored, and every String-bearing column of
every table (from ``system.columns``, each cast to String) is searched for every seed,
case-insensitively: nothing is found, while the non-sensitive parts are still there.
"""

from __future__ import annotations

import time
import uuid
from datetime import datetime, timezone

import msgspec
import pytest
from opentelemetry import trace as trace_api
from opentelemetry._logs import SeverityNumber
from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs
from opentelemetry.exporter.otlp.proto.common.metrics_encoder import encode_metrics
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from hub.otel.decode import LOG_COLUMNS, TRACE_COLUMNS, decode_logs, decode_metrics, decode_spans
from hub.records.decode import REQUEST_COLUMNS, RawMessage, decode_request_legs
from hub.records.request_leg import RequestLeg, new_event
from hub.redaction import Redactor

pytestmark = pytest.mark.clickhouse

T0 = time.time_ns() // 1_000_000_000 * 1_000_000_000 - 3600 * 1_000_000_000
MAX_BYTES = 4 * 1024 * 1024

# ---- the corpus: made-up patients ----------------------------------------------------------------
PATIENTS = [
    dict(first="Zebulon", last="Farquharson", ssn="078-05-1120", mrn="004417829",
         email="z.farquharson@example-health.org", phone="(617) 555-0142", dob="03/14/1962"),
    dict(first="Philippa", last="Wexcombe", ssn="219-09-9999", mrn="771203455",
         email="pwexcombe77@mailbox.example", phone="617-555-0199", dob="1958-11-02"),
]
A, B = PATIENTS


def seeds() -> list[str]:
    """Every value that must not be stored (names separately: a first name alone is a leak too)."""
    out = []
    for p in PATIENTS:
        out += [p["first"], p["last"], p["ssn"], p["ssn"].replace("-", ""), p["mrn"], p["email"],
                p["phone"][-8:], p["dob"]]
    return out


# ---- request legs ------------------------------------------------------------------------------------


def request_messages() -> list[RawMessage]:
    when = datetime.fromtimestamp(T0 / 1e9, tz=timezone.utc)
    legs = [
        # a gateway that puts raw ids into the route instead of the template
        (f"/patients/{A['mrn']}/chart", f"lookup failed for patient {A['first']} {A['last']} MRN {A['mrn']}",
         "/gateways/edge-1"),
        (f"/patients/{A['email']}/prefs", f"upstream said: SSN {A['ssn']} mismatch, call {A['phone']}",
         f"/gateways/edge-1?patient={B['first']}+{B['last']}&dob={B['dob']}"),
        (f"/records/MRN{B['mrn']}", f"Mrs. {B['first']} {B['last']} DOB {B['dob']} not found", "/gateways/edge-2"),
        ("/patients/{id}/chart", "", "/gateways/edge-2"),  # a clean one: stays as it is
    ]
    out = []
    for i, (route, error, source) in enumerate(legs):
        leg = RequestLeg(correlation_id=f"corr-{i}", leg="primary", gateway="edge-1", route=route, method="GET",
                         backend="ehr-records", status=500 if error else 200, latency_ms=12.5, event_time=when,
                         error=error)
        value = msgspec.json.encode(new_event(leg, source=source, id=str(uuid.uuid4())))
        out.append(RawMessage("hub.requests", 0, i, f"corr-{i}".encode(), value, T0 // 1_000_000))
    return out


# ---- OTLP with the SDK ---------------------------------------------------------------------------------

RESOURCE = {"service.name": "ehr-gateway", "deployment.environment": "gameday",
            "user.email": B["email"]}


def make_spans():
    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create(RESOURCE))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("hub.test.redaction", "1.0")
    root = tracer.start_span(
        "GET /patients/{id}/chart", kind=trace_api.SpanKind.SERVER, start_time=T0,
        attributes={
            "http.request.method": "GET",
            "http.response.status_code": 500,
            "http.route": "/patients/{id}/chart",
            "url.full": f"https://ehr.example.org/patients/{A['mrn']}/chart?name={A['first']}+{A['last']}"
                        f"&ssn={A['ssn']}",
            "url.path": f"/patients/{A['mrn']}/chart",
            "url.query": f"email={A['email']}",
            "http.request.header.authorization": [f"Basic {A['email']}"],
            "http.request.header.x-patient-name": [f"{A['first']} {A['last']}"],
            "http.request.header.content-type": ["application/json"],
            "enduser.id": A["email"],
            "client.address": "203.0.113.7",
            "db.statement": f"SELECT * FROM patients WHERE ssn = '{A['ssn']}'",
            "app.note": f"Patient {B['first']} {B['last']}, DOB {B['dob']}, phone {B['phone']}",
            "server.address": "ehr.example.org",
        },
    )
    root.add_event("exception", {"exception.message": f"no chart for {A['email']} (MRN: {A['mrn']})",
                                 "exception.type": "KeyError"}, timestamp=T0 + 1_000)
    ctx = trace_api.set_span_in_context(root)
    child = tracer.start_span(f"GET /patients/{B['mrn']}", context=ctx, kind=trace_api.SpanKind.CLIENT,
                              start_time=T0 + 2_000,
                              links=[trace_api.Link(root.get_span_context(), {"why": f"retry for SSN {B['ssn']}"})])
    child.set_status(trace_api.Status(trace_api.StatusCode.ERROR,
                                      f"patient {B['first']} {B['last']} not found (SSN {B['ssn']})"))
    child.end(end_time=T0 + 3_000)
    root.end(end_time=T0 + 5_000)
    provider.shutdown()
    return encode_spans(exporter.get_finished_spans())


def make_logs():
    exporter = InMemoryLogRecordExporter()
    provider = LoggerProvider(resource=Resource.create(RESOURCE))
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    logger = provider.get_logger("hub.test.redaction", "1.0")
    logger.emit(timestamp=T0, body=f"Patient {A['first']} {A['last']} (DOB {A['dob']}, SSN {A['ssn']}) admitted; "
                                   f"contact {A['email']} or {A['phone']}",
                severity_number=SeverityNumber.INFO, severity_text="INFO",
                attributes={"http.route": "/patients/{id}", "user.name": A["first"],
                            "url.full": f"https://ehr.example.org/search?mrn={A['mrn']}"})
    logger.emit(timestamp=T0 + 1_000,
                body={"patient": f"{B['first']} {B['last']}", "ssn": B["ssn"], "mrn": f"MRN {B['mrn']}"},
                severity_number=SeverityNumber.ERROR, severity_text="ERROR",
                attributes={"error.type": "timeout"}, event_name="chart.load")
    logger.emit(timestamp=T0 + 2_000, body="connection refused", severity_number=SeverityNumber.WARN,
                attributes={"db.system": "postgresql",
                            "app.detail": f"ssn={A['ssn'].replace('-', '')}; "
                                          f"social security no. {B['ssn'].replace('-', '')}"})
    provider.shutdown()
    return encode_logs(exporter.get_finished_logs())


def make_metrics():
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader], resource=Resource.create(RESOURCE))
    meter = provider.get_meter("hub.test.redaction", "1.0")
    lookups = meter.create_counter("chart.lookups")
    lookups.add(1, {"route": f"/patients/{A['mrn']}", "enduser.id": A["email"], "outcome": "miss"})
    latency = meter.create_histogram("chart.latency", unit="ms")
    latency.record(12.0, {"patient": f"{B['first']} {B['last']}", "outcome": "hit"})
    data = reader.get_metrics_data()
    provider.shutdown()
    return encode_metrics(data)


def otlp(request, topic: str) -> list[RawMessage]:
    return [RawMessage(topic, 0, 0, None, request.SerializeToString(), T0 // 1_000_000)]


# ---- the store -------------------------------------------------------------------------------------------


def decoded():
    """Every batch the worker would store, decoded but not redacted."""
    requests = decode_request_legs(request_messages(), MAX_BYTES)
    spans = decode_spans(otlp(make_spans(), "otlp_spans"), "otlp_proto", MAX_BYTES)
    logs = decode_logs(otlp(make_logs(), "otlp_logs"), "otlp_proto", MAX_BYTES)
    metrics = decode_metrics(otlp(make_metrics(), "otlp_metrics"), "otlp_proto", MAX_BYTES)
    for batch in (requests, spans, logs, metrics):
        assert batch.invalid == []
    return requests, spans, logs, metrics.table_batch()


def insert_all(store, requests, spans, logs, metrics) -> None:
    db = store.database
    store.insert(f"{db}.requests", requests.rows, REQUEST_COLUMNS)
    store.insert(f"{db}.otel_traces", spans.rows, TRACE_COLUMNS)
    store.insert(f"{db}.otel_logs", logs.rows, LOG_COLUMNS)
    for table, columns, rows in metrics.tables:
        store.insert(f"{db}.{table}", rows, columns)


def data_tables(store) -> list[str]:
    return [name for (name,) in store.query(
        "SELECT name FROM system.tables WHERE database = {db:String} AND engine NOT LIKE '%View%' ORDER BY name",
        parameters={"db": store.database}).result_rows]


def found(store, needles: list[str]) -> dict[str, list[str]]:
    """For each needle found anywhere: the ``table.column`` places (every column cast to String)."""
    db = store.database
    places: dict[str, list[str]] = {}
    columns = store.query(
        "SELECT table, name FROM system.columns WHERE database = {db:String} ORDER BY table, position",
        parameters={"db": db}).result_rows
    tables = set(data_tables(store))
    for table, column in columns:
        if table not in tables:
            continue
        hits = store.query(
            f"SELECT DISTINCT needle FROM {db}.`{table}` ARRAY JOIN {{needles:Array(String)}} AS needle "
            f"WHERE positionCaseInsensitive(toString(`{column}`), needle) > 0",
            parameters={"needles": needles}).result_rows
        for (needle,) in hits:
            places.setdefault(needle, []).append(f"{table}.{column}")
    return places


def test_no_seeded_patient_data_anywhere_in_the_store(store):
    db = store.database
    needles = seeds()

    # control: stored as they come, every seed is found (the corpus and the search both work)
    insert_all(store, *decoded())
    before = found(store, needles)
    assert sorted(before) == sorted(set(needles)), sorted(set(needles) - set(before))
    for table in data_tables(store):
        store.command(f"TRUNCATE TABLE {db}.`{table}`")
    assert store.scalar(f"SELECT count() FROM {db}.otel_traces") == 0

    # redacted at ingest, as the pipeline does it
    redactor = Redactor()
    requests, spans, logs, metrics = decoded()
    insert_all(store, redactor.requests(requests), redactor.spans(spans), redactor.logs(logs),
               redactor.metrics(metrics))
    assert found(store, needles) == {}

    # what was redacted is counted, and the counters hold no values
    counts = redactor.stats.snapshot()
    assert {source for source, _ in counts} == {"requests", "spans", "logs", "metrics"}
    assert counts[("spans", "drop:http.request.header.*")] == 2
    assert not [s for s in needles if s.lower() in repr(counts).lower()]

    # the non-sensitive parts are still there
    assert store.query(f"SELECT route, error FROM {db}.requests ORDER BY correlation_id").result_rows == [
        ("/patients/{id}/chart", "lookup failed for patient [REDACTED:name] MRN [REDACTED:mrn]"),
        ("/patients/{id}/prefs", "upstream said: SSN [REDACTED:ssn] mismatch, call [REDACTED:phone]"),
        ("/records/{id}", "Mrs. [REDACTED:name] DOB [REDACTED:dob] not found"),
        ("/patients/{id}/chart", ""),
    ]
    assert store.query(f"SELECT DISTINCT source FROM {db}.requests ORDER BY source").result_rows == [
        ("/gateways/edge-1",), ("/gateways/edge-2",)]
    root = store.query(
        f"SELECT SpanName, ServiceName, SpanAttributes, ResourceAttributes, Events.Attributes "
        f"FROM {db}.otel_traces WHERE SpanKind = 'Server'").result_rows
    name, service, attrs, resource, events = root[0]
    assert (name, service) == ("GET /patients/{id}/chart", "ehr-gateway")
    assert attrs["http.request.method"] == "GET" and attrs["http.response.status_code"] == "500"
    assert attrs["http.route"] == "/patients/{id}/chart"
    assert attrs["url.full"] == "https://ehr.example.org/patients/{id}/chart"
    assert attrs["url.path"] == "/patients/{id}/chart"
    assert attrs["http.request.header.content-type"] == '["application/json"]'
    assert attrs["server.address"] == "ehr.example.org"
    assert attrs["app.note"] == "Patient [REDACTED:name], DOB [REDACTED:dob], phone [REDACTED:phone]"
    for gone in ("url.query", "http.request.header.authorization", "http.request.header.x-patient-name",
                 "enduser.id", "client.address", "db.statement"):
        assert gone not in attrs
    assert resource["service.name"] == "ehr-gateway" and resource["deployment.environment"] == "gameday"
    assert "user.email" not in resource
    assert events[0]["exception.type"] == "KeyError"
    child = store.query(f"SELECT SpanName, StatusMessage FROM {db}.otel_traces WHERE SpanKind = 'Client'").result_rows
    assert child == [("GET /patients/{id}", "patient [REDACTED:name] not found (SSN [REDACTED:ssn])")]
    bodies = [b for (b,) in store.query(f"SELECT Body FROM {db}.otel_logs ORDER BY Timestamp").result_rows]
    assert bodies[0].startswith("Patient [REDACTED:name] (DOB [REDACTED:dob], SSN [REDACTED:ssn]) admitted")
    assert bodies[2] == "connection refused"
    assert store.scalar(f"SELECT LogAttributes['url.full'] FROM {db}.otel_logs ORDER BY Timestamp LIMIT 1") == \
        "https://ehr.example.org/search"
    assert store.scalar(f"SELECT count() FROM {db}.otel_metrics_sum WHERE Attributes['outcome'] = 'miss' "
                        f"AND Attributes['route'] = '/patients/{{id}}'") == 1
