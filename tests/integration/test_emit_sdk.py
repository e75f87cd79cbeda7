"""The emitter SDK against the real broker and a real worker: rows land in the embedded ClickHouse.

One worker (``hub.testing.WorkerProcess``) serves the module; each test writes under its own
gateway or service name and counts only its own rows.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
import uuid
from collections import defaultdict
from datetime import datetime, timedelta, timezone

import orjson
import pytest
from kafka import KafkaConsumer, TopicPartition
from opentelemetry import trace as trace_api
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from hub.emit import EventEmitter, KafkaSpanExporter, RequestLeg, RequestLegMiddleware, new_event, partition_for
from hub.names import ATTR_EXPERIMENT_ID
from hub.records.generate import encode_event
from hub.testing import WorkerProcess, free_port

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse]

UTC = timezone.utc


@pytest.fixture(scope="module")
def worker(tmp_path_factory, kafka_bootstrap):
    with WorkerProcess.start(tmp_path_factory.mktemp("emit") / "home", kafka_bootstrap,
                             HUB_OTLP_ENCODING="auto") as worker:
        yield worker


def make_leg(correlation_id: str, leg: str, gateway: str, i: int, when: datetime) -> RequestLeg:
    return RequestLeg(
        correlation_id=correlation_id, leg=leg, gateway=gateway, route="/patients/{id}",
        method="GET", backend="patients" if leg == "primary" else "patients-v2",
        status=200 if i % 50 else 503, latency_ms=10.0 + i % 7, event_time=when,
        request_bytes=300, response_bytes=2400, response_hash="%032x" % (i % 1000),
        error="" if i % 50 else "service unavailable",
    )


def read_topic(bootstrap: str, topic: str) -> list:
    """Every record of ``topic`` from the beginning, with a group-less consumer."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                             consumer_timeout_ms=1000)
    try:
        tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic))]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        end = consumer.end_offsets(tps)
        records = []
        deadline = time.monotonic() + 60
        while any(consumer.position(tp) < end[tp] for tp in tps) and time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=500).values():
                records.extend(batch)
        return records
    finally:
        consumer.close()


# ---- (a) 5,000 legs: stored, and both legs of each request in one partition ------------------


@pytest.mark.slow
def test_emitter_sends_5000_legs_stored_once_and_request_legs_share_a_partition(worker, kafka_bootstrap):
    topic = worker.settings.topic_requests
    gateway = "edge-sdk-a"
    now = datetime.now(UTC)
    emitter = EventEmitter(kafka_bootstrap, topic, source="/gateways/edge-sdk-a")
    accepted = []
    for i in range(2500):
        cid = str(uuid.uuid4())
        when = now + timedelta(milliseconds=i)
        # primaries through emit_leg, shadows as ready-made CloudEvents through emit
        accepted.append(emitter.emit_leg(make_leg(cid, "primary", gateway, i, when)))
        shadow = make_leg(cid, "shadow", gateway, i, when + timedelta(milliseconds=3))
        accepted.append(emitter.emit(cid, encode_event(new_event(shadow, source="/gateways/edge-sdk-a",
                                                                 time=shadow.event_time))))
    assert all(accepted)
    assert emitter.flush(timeout=60)
    stats = emitter.stats()
    emitter.close()
    assert stats["sent"] == 5000 and stats["queued"] == 0
    assert stats["dropped_buffer_full"] == stats["dropped_send_failed"] == stats["dropped_invalid"] == 0
    assert 50 <= stats["batches"] < 5000  # packed: up to 100 events per Kafka record

    where = f"FROM hub.requests WHERE gateway = '{gateway}'"
    assert worker.wait_for(f"SELECT count() {where}", 5000, timeout=120) == 5000
    assert dict(worker.sql(f"SELECT leg, count() {where} GROUP BY leg")) == {"primary": 2500, "shadow": 2500}
    assert worker.sql(f"SELECT uniqExact(correlation_id), uniqExact(event_id), countIf(status = 503) {where}") == [
        [2500, 5000, 100]]

    records = read_topic(kafka_bootstrap, topic)
    partitions_of = defaultdict(set)
    partition_count = worker.settings.partitions  # the worker created the topic
    for record in records:
        events = orjson.loads(record.value)
        assert isinstance(events, list) and 1 <= len(events) <= 100
        for event in events:
            if event["source"] != "/gateways/edge-sdk-a":
                continue
            cid = event["data"]["correlation_id"]
            partitions_of[cid].add(record.partition)
            # where Kafka's default partitioner puts the correlation id
            assert partition_for(cid.encode(), partition_count) == record.partition
    assert len(partitions_of) == 2500
    assert all(len(parts) == 1 for parts in partitions_of.values())
    assert len(set().union(*partitions_of.values())) > 1  # the topic's partitions were all in use


# ---- (b) an unreachable broker: nothing blocks, nothing raises, drops are counted -----------


def test_emitter_with_unreachable_broker_returns_at_once_and_counts_overflow(caplog):
    caplog.set_level(logging.WARNING, logger="hub.emit")
    started = time.monotonic()
    emitter = EventEmitter(f"127.0.0.1:{free_port()}", "hub.requests", max_buffer=1000,
                           report_interval=0.2)
    created = time.monotonic() - started
    now = datetime.now(UTC)
    results = [emitter.emit_leg(make_leg(str(uuid.uuid4()), "primary", "edge-sdk-b", i, now))
               for i in range(1500)]
    assert results == [True] * 1000 + [False] * 500  # the buffer filled while the calls returned
    assert emitter.emit(b"k", b'{"not": "sent"}') is False
    assert emitter.emit(None, None) is False  # nonsense input is counted, never raised
    stats = emitter.stats()
    assert (stats["queued"], stats["dropped_buffer_full"], stats["sent"]) == (1000, 501, 0)
    assert stats["dropped_invalid"] == 1
    assert created < 1.0  # no connection attempt on the caller's thread

    deadline = time.monotonic() + 10
    while not any("dropped 502 events" in r.getMessage() for r in caplog.records) and time.monotonic() < deadline:
        time.sleep(0.1)
    [report] = [r for r in caplog.records if "hub.emit dropped" in r.getMessage()]
    assert "buffer full: 501" in report.getMessage() and "invalid: 1" in report.getMessage()

    started = time.monotonic()
    emitter.close(timeout=1.0)
    assert time.monotonic() - started < 5.0
    stats = emitter.stats()
    assert (stats["queued"], stats["dropped_send_failed"], stats["sent"]) == (0, 1000, 0)
    assert emitter.emit(b"k", b"{}") is False and emitter.stats()["dropped_closed"] == 1


# ---- (c) spans through KafkaSpanExporter, both encodings ------------------------------------


@pytest.mark.slow
def test_span_exporter_spans_stored_in_otel_traces_in_both_encodings(worker, kafka_bootstrap):
    topic = worker.settings.topic_spans
    for encoding in ("otlp_proto", "otlp_json"):
        provider = TracerProvider(resource=Resource.create({"service.name": f"sdk-{encoding}"}))
        exporter = KafkaSpanExporter(kafka_bootstrap, topic, encoding)
        provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=100))
        tracer = provider.get_tracer("hub.emit.test")
        with tracer.start_as_current_span("GET /patients/{id}", kind=trace_api.SpanKind.SERVER, attributes={
                "http.route": "/patients/{id}", "http.status_code": 200, "cache.hit": True,
                "sample.ratio": 0.25, ATTR_EXPERIMENT_ID: "exp-sdk"}):
            with tracer.start_as_current_span("SELECT patients") as child:
                child.set_attribute("db.rows", 3)
        provider.shutdown()  # flushes the processor and shuts the exporter down
        assert (exporter.exported_spans, exporter.failed_spans) == (2, 0)

    where = "FROM hub.otel_traces WHERE ServiceName LIKE 'sdk-%'"
    assert worker.wait_for(f"SELECT count() {where}", 4, timeout=120) == 4
    rows = worker.sql(
        "SELECT ServiceName, SpanName, SpanKind, SpanAttributes['http.route'], "
        "SpanAttributes['http.status_code'], SpanAttributes['cache.hit'], SpanAttributes['sample.ratio'], "
        f"ExperimentId {where} AND ParentSpanId = '' ORDER BY ServiceName")
    assert rows == [
        [f"sdk-{enc}", "GET /patients/{id}", "Server", "/patients/{id}", "200", "true", "0.25", "exp-sdk"]
        for enc in ("otlp_json", "otlp_proto")]
    children = worker.sql(f"SELECT ServiceName, SpanAttributes['db.rows'], length(TraceId), length(ParentSpanId) "
                          f"{where} AND SpanName = 'SELECT patients' ORDER BY ServiceName")
    assert children == [["sdk-otlp_json", "3", 32, 16], ["sdk-otlp_proto", "3", 32, 16]]


def test_span_exporter_with_unreachable_broker_fails_the_export_without_raising():
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    with provider.get_tracer("t").start_as_current_span("lost"):
        pass
    exporter = KafkaSpanExporter(f"127.0.0.1:{free_port()}", timeout=1.0)
    started = time.monotonic()
    assert exporter.export(memory.get_finished_spans()) is SpanExportResult.FAILURE
    assert time.monotonic() - started < 5.0
    assert exporter.failed_spans == 1
    exporter.shutdown()
    assert exporter.export(memory.get_finished_spans()) is SpanExportResult.FAILURE


# ---- (d) the ASGI middleware in front of a tiny app, with a real emitter --------------------


async def patients_app(scope, receive, send):
    """A tiny raw ASGI app: /patients/<n> answers JSON, /boom raises, anything else is 404."""
    while (await receive()).get("more_body"):
        pass
    if scope["path"] == "/boom":
        raise ValueError("upstream exploded")
    match = re.fullmatch(r"/patients/(\d+)", scope["path"])
    status, body = (200, b'{"id": %s}' % match.group(1).encode()) if match else (404, b"not found")
    await send({"type": "http.response.start", "status": status, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": body})


def patient_route(scope):
    return "/patients/{id}" if re.fullmatch(r"/patients/\d+", scope["path"]) else None


def serve(app, path: str, query: bytes, headers=()) -> list:
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
             "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": query,
             "root_path": "", "headers": list(headers), "client": ("127.0.0.1", 40000),
             "server": ("127.0.0.1", 8000)}
    sent = []

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    return sent


@pytest.mark.slow
def test_asgi_middleware_rows_have_route_templates_and_no_query_strings(worker, kafka_bootstrap):
    emitter = EventEmitter(kafka_bootstrap, worker.settings.topic_requests)
    app = RequestLegMiddleware(patients_app, emitter, gateway="edge-sdk-d", backend="patients",
                               route_of=patient_route)
    for i in range(40):
        sent = serve(app, f"/patients/{i}", b"name=Jane+Doe&dob=1970-01-01",
                     [(b"baggage", b"experiment.id=exp-asgi,experiment.phase=injection")])
        assert sent[0]["status"] == 200 and sent[1]["body"] == b'{"id": %d}' % i
    assert serve(app, "/unknown", b"ssn=123-45-6789")[0]["status"] == 404
    with pytest.raises(ValueError):
        serve(app, "/boom", b"token=secret")
    assert emitter.flush(timeout=30)
    emitter.close()

    where = "FROM hub.requests WHERE gateway = 'edge-sdk-d'"
    assert worker.wait_for(f"SELECT count() {where}", 42, timeout=120) == 42
    rows = worker.sql(f"SELECT route, status, experiment_id, phase, count(), min(response_bytes), "
                      f"max(length(response_hash)) {where} GROUP BY ALL ORDER BY route")
    assert rows == [["/boom", 500, "", "", 1, 0, 0],
                    ["/patients/{id}", 200, "exp-asgi", "injection", 40, 9, 32],
                    ["/unknown", 404, "", "", 1, 9, 32]]
    assert worker.sql(f"SELECT error {where} AND status = 500") == [["ValueError: upstream exploded"]]
    leaks = worker.sql(f"SELECT count() {where} AND (position(route, '?') > 0 OR route LIKE '%Jane%' "
                       "OR route LIKE '%ssn%' OR route LIKE '%token%' OR error LIKE '%Jane%')")
    assert leaks == [[0]]
