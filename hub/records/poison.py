"""A corpus of records nobody planned for, on every topic the worker reads, each with what must become of it.

The poison suite (``tests/integration/test_poison.py`` and the ``poison`` phase of
``python -m bench.reliability``) sends this corpus to a real worker and then checks exact counts:
every good record stored exactly once, every bad one a dead letter with its reason, no agent
crashed and no sink stalled. Good records come from the real encoders of their kind (the
OpenTelemetry SDK's OTLP encoders for spans, metrics and logs; the hub's own record models for
request legs, alerts, pairs and experiment events); bad ones are raw bytes, as kafka-python would
send them: empty, truncated, not UTF-8, nested thousands deep, over the size limit, wrong types,
timestamps outside what the hub stores, and forged lifecycle events of the hub's own kind.

``expected`` of a record says what the worker must make of it: rows per table for the good part,
and the number of dead letters for the bad part (a batch record can hold both). Counts are
independent of the hub's decoders: they come from the corpus's own construction.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import uuid
from dataclasses import dataclass, field
from typing import Any, Iterator

#: The ``source`` of every shadow pair in the corpus, so pairs the stream pairer derives from the
#: corpus's request legs are told apart from the corpus's own.
PAIR_SOURCE = "poison-suite"
#: Experiment id of the corpus's alert records and experiment events (a copy's number is appended).
EXPERIMENT_ID = "poison-suite-draft"
#: ``service.name`` of the corpus's OpenTelemetry records.
SERVICE = "poison-orders"
#: Nesting depth of the deeply nested records (a recursive decoder fails far below this).
DEEP = 50_000

UTC = dt.timezone.utc


@dataclass
class PoisonRecord:
    """One Kafka record of the corpus and what the worker must make of it."""

    topic: str  #: the Settings attribute naming the topic: ``topic_requests``, ``topic_spans``, ...
    label: str  #: what it is, for messages
    value: bytes
    key: bytes | None = None
    rows: dict[str, int] = field(default_factory=dict)  #: table -> rows it must add
    dead_letters: int = 0  #: dead letters it must add


@dataclass
class Expected:
    """Totals over a corpus: rows per table, dead letters per topic attribute."""

    rows: dict[str, int] = field(default_factory=dict)
    dead_letters: dict[str, int] = field(default_factory=dict)
    records: int = 0

    def add(self, record: PoisonRecord) -> None:
        self.records += 1
        for table, n in record.rows.items():
            self.rows[table] = self.rows.get(table, 0) + n
        self.dead_letters[record.topic] = self.dead_letters.get(record.topic, 0) + record.dead_letters


def expected_of(records: list[PoisonRecord]) -> Expected:
    out = Expected()
    for record in records:
        out.add(record)
    return out


# ---- good records ----------------------------------------------------------------------------
def _iso(t: dt.datetime) -> str:
    return t.astimezone(UTC).isoformat().replace("+00:00", "Z")


def request_leg(rng: random.Random, when: dt.datetime, **data) -> dict:
    """A valid ``dev.gamedayhub.request.leg.v1`` CloudEvent as plain data."""
    body = {
        "correlation_id": str(uuid.UUID(int=rng.getrandbits(128))),
        "leg": "primary", "gateway": "edge-poison", "route": "/api/orders/{id}", "method": "GET",
        "backend": "orders", "status": 200, "latency_ms": round(rng.uniform(1, 80), 3),
        "event_time": _iso(when), "request_bytes": 120, "response_bytes": 512,
    }
    body.update(data)
    return {"specversion": "1.0", "id": str(uuid.UUID(int=rng.getrandbits(128))), "source": "/poison/gateway",
            "type": "dev.gamedayhub.request.leg.v1", "datacontenttype": "application/json", "data": body}


def _dumps(value) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def alert_record(rng: random.Random, when: dt.datetime, experiment_id: str = EXPERIMENT_ID, **fields) -> dict:
    record = {"kind": "alert", "alert_id": str(uuid.UUID(int=rng.getrandbits(128))), "status": "firing",
              "experiment_id": experiment_id, "rule": "errors", "severity": "warn", "measurement": "error_rate",
              "comparison": ">", "threshold": 0.2, "observed": 0.5, "samples": 100,
              "window_start": _iso(when - dt.timedelta(seconds=10)), "window_end": _iso(when),
              "top_contributors": [], "example_request_ids": [], "message": "error rate 0.5 > 0.2",
              "time": _iso(when)}
    record.update(fields)
    return record


def pair_event(rng: random.Random, when: dt.datetime, **data) -> dict:
    body = {"correlation_id": str(uuid.UUID(int=rng.getrandbits(128))), "gateway": "edge-poison",
            "route": "/api/orders/{id}", "method": "GET", "primary_backend": "orders",
            "shadow_backend": "orders-shadow", "outcome": "match", "event_time": _iso(when),
            "primary_status": 200, "shadow_status": 200, "status_match": True, "body_match": True,
            "latency_primary_ms": 3.0, "latency_shadow_ms": 4.0, "latency_diff_ms": 1.0}
    body.update(data)
    return {"specversion": "1.0", "id": str(uuid.UUID(int=rng.getrandbits(128))), "source": PAIR_SOURCE,
            "type": "dev.gamedayhub.shadow.pair.v1", "datacontenttype": "application/json", "data": body}


def _otel_spans(now_ns: int, count: int):
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": SERVICE}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("poison.tracer", "1.0")
    for i in range(count):
        span = tracer.start_span(f"GET /orders/{i}", start_time=now_ns - 2_000_000_000 + i * 1000,
                                 attributes={"http.route": "/orders/{id}", "http.status_code": 200})
        span.end(end_time=now_ns - 1_000_000_000 + i * 1000)
    return encode_spans(exporter.get_finished_spans())


def _otel_logs(now_ns: int, count: int):
    from opentelemetry._logs import SeverityNumber
    from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
    from opentelemetry.sdk.resources import Resource

    exporter = InMemoryLogRecordExporter()
    provider = LoggerProvider(resource=Resource.create({"service.name": SERVICE}))
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    logger = provider.get_logger("poison.logger", "1.0")
    for i in range(count):
        logger.emit(timestamp=now_ns - 1_000_000_000 + i, observed_timestamp=now_ns, body=f"pool resized {i}",
                    severity_number=SeverityNumber.INFO, severity_text="INFO")
    return encode_logs(exporter.get_finished_logs())


def _otel_metrics():
    from opentelemetry.exporter.otlp.proto.common.metrics_encoder import encode_metrics
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.resources import Resource

    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader], resource=Resource.create({"service.name": SERVICE}))
    meter = provider.get_meter("poison.meter", "1.0")
    meter.create_counter("poison.requests", unit="1").add(3, {"route": "/orders"})
    meter.create_histogram("poison.latency", unit="ms").record(12.5, {"route": "/orders"})
    meter.create_up_down_counter("poison.in_flight").add(2, {"route": "/orders"})
    data = reader.get_metrics_data()
    assert data is not None  # the instruments above recorded
    return encode_metrics(data)


_METRIC_TABLE = {"sum": "otel_metrics_sum", "gauge": "otel_metrics_gauge", "histogram": "otel_metrics_histogram",
                 "exponential_histogram": "otel_metrics_exponential_histogram", "summary": "otel_metrics_summary"}


def metric_rows(request) -> dict[str, int]:
    """Data points per ``otel_metrics_*`` table of an ExportMetricsServiceRequest."""
    rows: dict[str, int] = {}
    for rm in request.resource_metrics:
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                kind = metric.WhichOneof("data")
                table = _METRIC_TABLE[kind]
                rows[table] = rows.get(table, 0) + len(getattr(metric, kind).data_points)
    return rows


def _span_count(request) -> int:
    return sum(len(ss.spans) for rs in request.resource_spans for ss in rs.scope_spans)


def _log_count(request) -> int:
    return sum(len(sl.log_records) for rl in request.resource_logs for sl in rl.scope_logs)


# ---- bad bytes ---------------------------------------------------------------------------------
def deeply_nested(depth: int = DEEP) -> bytes:
    return b'{"a":' + b"[" * depth + b"]" * depth + b"}"


def _common_bad(topic: str, max_bytes: int, json_topic: bool) -> Iterator[PoisonRecord]:
    """Bad records every topic must dead-letter, one dead letter each."""
    yield PoisonRecord(topic, "empty value", b"", dead_letters=1)
    yield PoisonRecord(topic, "truncated JSON", b'{"specversion":"1.0","id":"x","data":{', dead_letters=1)
    yield PoisonRecord(topic, "invalid UTF-8", b'{"id":"\xff\xfe\xfa"}', dead_letters=1)
    yield PoisonRecord(topic, "nested 50,000 deep", deeply_nested(), dead_letters=1)
    yield PoisonRecord(topic, "one byte over the size limit",
                       b'{"pad":"' + b"p" * (max_bytes + 1 - len(b'{"pad":""}')) + b'"}', dead_letters=1)
    # runs that make a backtracking pattern quadratic (the redaction of a dead letter scans them)
    yield PoisonRecord(topic, "a 21 KB run of ab-ab-ab-", b"ab-" * 7000, dead_letters=1)
    yield PoisonRecord(topic, "a 20 KB run of A-A-A-", b"A-" * 10000, dead_letters=1)
    if json_topic:
        yield PoisonRecord(topic, "JSON of the wrong shape", b'{"specversion":7,"data":7,"kind":[]}', dead_letters=1)
        yield PoisonRecord(topic, "not JSON", b"this is not json at all", dead_letters=1)
        yield PoisonRecord(topic, "a JSON number", b"12345", dead_letters=1)
        yield PoisonRecord(topic, "JSON null", b"null", dead_letters=1)
    else:
        yield PoisonRecord(topic, "OTLP JSON of the wrong shape",
                           b'{"resourceSpans":5,"resourceLogs":5,"resourceMetrics":5}', dead_letters=1)


def build_corpus(max_bytes: int, seed: int = 0, now: dt.datetime | None = None,
                 good_per_kind: int = 20, copies: int = 1) -> list[PoisonRecord]:
    """The whole corpus: good and bad records for every topic the worker reads, shuffled per topic
    (so bad records sit between good ones), in a reproducible order for a given ``seed``.

    ``copies`` > 1 makes a random mix of that many variants (new ids, the bad kinds again, the
    records over the size limit only in the first, to keep the volume sane), interleaved.
    """
    if copies > 1:
        variants = [build_corpus(max_bytes, seed + i, now, good_per_kind) for i in range(copies)]
        for variant in variants[1:]:
            variant[:] = [r for r in variant if "over the size limit" not in r.label]
        rng = random.Random(seed)
        mixed: list[PoisonRecord] = []
        queues = [list(v) for v in variants]
        while queues:  # interleave, keeping each variant's order (an experiment's log order)
            queue = rng.choice(queues)
            mixed.append(queue.pop(0))
            if not queue:
                queues.remove(queue)
        return mixed
    from hub.emit._otel import otlp_json

    rng = random.Random(seed)
    experiment_id = f"{EXPERIMENT_ID}-{seed}"
    now = (now or dt.datetime.now(UTC)).replace(microsecond=0) - dt.timedelta(minutes=5)
    now_ns = int(now.timestamp()) * 1_000_000_000
    out: list[PoisonRecord] = []

    # -- request legs
    t = "topic_requests"
    req: list[PoisonRecord] = []
    for _ in range(good_per_kind):
        req.append(PoisonRecord(t, "good leg", _dumps(request_leg(rng, now)), rows={"requests": 1}))
    batch = [request_leg(rng, now) for _ in range(25)]
    req.append(PoisonRecord(t, "good batch of 25", _dumps(batch), rows={"requests": 25}))
    days = [request_leg(rng, now - dt.timedelta(days=d)) for d in range(101)]
    req.append(PoisonRecord(t, "101 legs on 101 days", _dumps(days), rows={"requests": 101}))
    req.append(PoisonRecord(t, "an error text of 5,000 ab- runs", _dumps(request_leg(rng, now, status=502, error="ab-" * 5000)),
                            rows={"requests": 1}))
    req.append(PoisonRecord(t, "a 200 KB error text", _dumps(request_leg(rng, now, status=500, error="x" * 200_000)),
                            rows={"requests": 1}))
    one_wrong = [request_leg(rng, now), request_leg(rng, now, status="five hundred"), request_leg(rng, now)]
    req.append(PoisonRecord(t, "batch with one wrong type", _dumps(one_wrong), rows={"requests": 2}, dead_letters=1))
    changes: list[tuple[str, dict[str, Any]]] = [
        ("status as text", {"status": "abc"}),
        ("unknown leg", {"leg": "sideways"}),
        ("latency as text NaN", {"latency_ms": "NaN"}),
        ("negative bytes", {"request_bytes": -5}),
        ("event time 1970", {"event_time": "1970-01-01T00:00:00Z"}),
        ("event time 1999", {"event_time": "1999-12-31T23:59:59Z"}),
        ("event time year 9999", {"event_time": "9999-12-31T23:59:59Z"}),
        ("event time a week ahead", {"event_time": _iso(now + dt.timedelta(days=7))}),
        ("event time not a time", {"event_time": "yesterday"}),
    ]
    for label, data in changes:
        req.append(PoisonRecord(t, label, _dumps(request_leg(rng, now, **data)), dead_letters=1))
    req.append(PoisonRecord(t, "batch holding deep nesting", _dumps([request_leg(rng, now)])[:-1]
                            + b"," + deeply_nested() + b"]", rows={"requests": 1}, dead_letters=1))
    req.extend(_common_bad(t, max_bytes, True))
    out.extend(_shuffled(rng, req))

    # -- alerts
    t = "topic_alerts"
    al = [PoisonRecord(t, "good alert", _dumps(alert_record(rng, now, experiment_id)), rows={"alerts": 1})
          for _ in range(good_per_kind)]
    changes = [
        ("kind as a number", {"kind": 5}),
        ("time in year 9999", {"time": "9999-01-01T00:00:00Z"}),
        ("time not a time", {"time": "noon"}),
        ("observed as text", {"observed": "high"}),
        ("samples negative", {"samples": -1}),
        ("example ids not a list", {"example_request_ids": 7}),
    ]
    for label, fields in changes:
        al.append(PoisonRecord(t, label, _dumps(alert_record(rng, now, experiment_id, **fields)), dead_letters=1))
    al.append(PoisonRecord(t, "alert without experiment", _dumps({"kind": "alert", "time": _iso(now)}),
                           dead_letters=1))
    al.extend(_common_bad(t, max_bytes, True))
    out.extend(_shuffled(rng, al))

    # -- shadow pairs
    t = "topic_pairs"
    pr = [PoisonRecord(t, "good pair", _dumps(pair_event(rng, now)), rows={"shadow_pairs": 1})
          for _ in range(good_per_kind)]
    changes = [
        ("unknown outcome", {"outcome": "kinda"}),
        ("status 9999", {"primary_status": 9999}),
        ("event time 1970", {"event_time": "1970-01-01T00:00:00Z"}),
        ("event time year 9999", {"event_time": "9999-12-31T23:59:59Z"}),
    ]
    for label, data in changes:
        pr.append(PoisonRecord(t, label, _dumps(pair_event(rng, now, **data)), dead_letters=1))
    pr.extend(_common_bad(t, max_bytes, True))
    out.extend(_shuffled(rng, pr))

    # -- spans (proto and JSON, from the OpenTelemetry SDK's encoders)
    t = "topic_spans"
    sp: list[PoisonRecord] = []
    for i in range(good_per_kind // 2):
        request = _otel_spans(now_ns + i * 10_000_000, 3)
        sp.append(PoisonRecord(t, "good spans (proto)", request.SerializeToString(),
                               rows={"otel_traces": _span_count(request)}))
        sp.append(PoisonRecord(t, "good spans (JSON)", otlp_json(request), rows={"otel_traces": _span_count(request)}))
    for label, start in [("start 2^64-1 ns", 2 ** 64 - 1), ("start at 0", 0), ("start in year 2200", 7_258_118_400 * 10 ** 9)]:
        request = _otel_spans(now_ns, 1)
        request.resource_spans[0].scope_spans[0].spans[0].start_time_unix_nano = start
        sp.append(PoisonRecord(t, label + " (proto)", request.SerializeToString(), dead_letters=1))
        sp.append(PoisonRecord(t, label + " (JSON)", otlp_json(request), dead_letters=1))
    sp.append(PoisonRecord(t, "random bytes as proto", bytes(rng.getrandbits(8) | 0x80 for _ in range(64)),
                           dead_letters=1))
    sp.extend(_common_bad(t, max_bytes, False))
    out.extend(_shuffled(rng, sp))

    # -- logs
    t = "topic_logs"
    lg: list[PoisonRecord] = []
    for i in range(good_per_kind // 2):
        request = _otel_logs(now_ns + i * 10_000_000, 2)
        lg.append(PoisonRecord(t, "good logs (proto)", request.SerializeToString(), rows={"otel_logs": _log_count(request)}))
        lg.append(PoisonRecord(t, "good logs (JSON)", otlp_json(request), rows={"otel_logs": _log_count(request)}))
    request = _otel_logs(now_ns, 1)
    request.resource_logs[0].scope_logs[0].log_records[0].time_unix_nano = 2 ** 64 - 1
    lg.append(PoisonRecord(t, "log at 2^64-1 ns (proto)", request.SerializeToString(), dead_letters=1))
    lg.extend(_common_bad(t, max_bytes, False))
    out.extend(_shuffled(rng, lg))

    # -- metrics
    t = "topic_metrics"
    mt: list[PoisonRecord] = []
    for _ in range(good_per_kind // 2):
        request = _otel_metrics()
        mt.append(PoisonRecord(t, "good metrics (proto)", request.SerializeToString(), rows=metric_rows(request)))
        mt.append(PoisonRecord(t, "good metrics (JSON)", otlp_json(request), rows=metric_rows(request)))
    mt.extend(_common_bad(t, max_bytes, False))
    out.extend(_shuffled(rng, mt))

    # -- experiment events: a draft, and forged ends of it written straight to the topic
    t = "topic_experiments"
    ex = list(_experiment_records(rng, now, experiment_id))
    ex.extend(_common_bad(t, max_bytes, True))
    ex.append(PoisonRecord(t, "unknown kind", _dumps({"kind": "experiment_exploded", "experiment_id": experiment_id}),
                           key=experiment_id.encode(), dead_letters=1))
    out.extend(ex)  # in log order: the draft's creation comes first
    return out


def _experiment_records(rng: random.Random, now: dt.datetime, experiment_id: str) -> Iterator[PoisonRecord]:
    from hub.experiments.definition import definition_to_dict, parse_definition
    from hub.experiments.events import ExperimentAborted, ExperimentCompleted, ExperimentCreated, encode_event

    definition = parse_definition(_DEFINITION.format(id=experiment_id))
    key = experiment_id.encode()

    def common(sequence: int, offset_s: float) -> dict:
        return {"experiment_id": experiment_id, "event_id": str(uuid.UUID(int=rng.getrandbits(128))),
                "actor": "poison-suite", "time": now + dt.timedelta(seconds=offset_s), "sequence": sequence}

    created = ExperimentCreated(definition=definition_to_dict(definition), **common(1, 0))
    yield PoisonRecord("topic_experiments", "draft created", encode_event(created), key=key,
                       rows={"experiment_events": 1})
    # Forged: the fold refuses both (a draft can neither complete nor abort); stored for the audit
    # trail, never shown by the experiment views as the experiment's state.
    completed = ExperimentCompleted(summary="forged completion", **common(2, 1))
    yield PoisonRecord("topic_experiments", "forged completion of a draft", encode_event(completed), key=key,
                       rows={"experiment_events": 1})
    aborted = ExperimentAborted(reason="forged abort reason", by="nobody", **common(3, 2))
    yield PoisonRecord("topic_experiments", "forged abort of a draft", encode_event(aborted), key=key,
                       rows={"experiment_events": 1})


_DEFINITION = """
id: {id}
title: Poison suite draft
scenario: A draft experiment whose log receives forged events.
hypothesis: The views show the draft as a draft.
expected_outcome: Nothing happens.
steady_state:
  - {{name: errors, sli: error_rate, source: requests, tolerance: {{max: 0.2}}}}
environment: {{name: staging, kind: non-live, risk: low}}
targets: {{gateways: [edge-poison]}}
phases: [{{name: baseline, planned_minutes: 1}}]
"""


def _shuffled(rng: random.Random, records: list[PoisonRecord]) -> list[PoisonRecord]:
    records = list(records)
    rng.shuffle(records)
    return records


def send_corpus(bootstrap: str, settings, records: list[PoisonRecord]) -> None:
    """Send the corpus with kafka-python as raw bytes (no hub encoder in between), each record on
    the topic its ``topic`` attribute names in ``settings``; waits for every acknowledgement."""
    from hub.runtime import clients

    # larger requests than the hub's own: the corpus holds records past HUB_MAX_RECORD_BYTES
    producer = clients.producer(bootstrap, acks="all", linger_ms=5, max_request_size=4 * 1024 * 1024)
    try:
        futures = [producer.send(getattr(settings, r.topic), key=r.key, value=r.value) for r in records]
        producer.flush(timeout=60)
        for future, record in zip(futures, records):
            future.get(timeout=30)  # raises if the broker refused it
    finally:
        producer.close(timeout=10)


# ---- checking a worker's store against the corpus ----------------------------------------------
def count_queries(settings, expected: Expected) -> dict[str, str]:
    """One counting query per table the corpus fills (only the corpus's own rows of it)."""
    db = settings.database
    queries = {}
    for table in expected.rows:
        if table.startswith("otel_"):
            where = f"ServiceName = '{SERVICE}'"
        else:
            where = _SCOPE.get(table, "1")
        queries[table] = f"SELECT count() FROM {db}.{table} WHERE {where}"
    return queries


#: How the corpus's own rows of a table are told from other rows of a store in use.
_SCOPE = {
    "requests": "gateway = 'edge-poison'",
    "shadow_pairs": f"source = '{PAIR_SOURCE}'",
    "alerts": f"startsWith(experiment_id, '{EXPERIMENT_ID}')",
    "experiment_events": f"startsWith(experiment_id, '{EXPERIMENT_ID}')",
}


def observe(sql, settings, expected: Expected) -> dict:
    """Rows per table and dead letters per topic attribute, as the worker's store has them now
    (``sql(query) -> rows`` runs a query, e.g. ``WorkerProcess.sql``)."""
    rows = {table: int(sql(query)[0][0]) for table, query in count_queries(settings, expected).items()}
    by_topic = {topic: 0 for topic in expected.dead_letters}
    names = {getattr(settings, attr): attr for attr in expected.dead_letters}
    for topic, n in sql(f"SELECT source_topic, count() FROM {settings.database}.dead_letters GROUP BY source_topic"):
        if topic in names:
            by_topic[names[topic]] = int(n)
    without_reason = int(sql(f"SELECT count() FROM {settings.database}.dead_letters WHERE reason = ''")[0][0])
    return {"rows": rows, "dead_letters": by_topic, "dead_letters_without_reason": without_reason}


def wait_for_outcome(sql, settings, expected: Expected, timeout: float = 180.0, settle: float = 3.0) -> dict:
    """Poll until the store holds at least what the corpus expects (or ``timeout``), then once more
    after ``settle`` seconds so that a duplicate arriving late is seen too; returns ``observe``."""
    import time

    deadline = time.monotonic() + timeout
    seen = observe(sql, settings, expected)
    while time.monotonic() < deadline:
        if all(seen["rows"].get(t, 0) >= n for t, n in expected.rows.items()) and \
                all(seen["dead_letters"].get(t, 0) >= n for t, n in expected.dead_letters.items()):
            break
        time.sleep(0.5)
        seen = observe(sql, settings, expected)
    time.sleep(settle)
    return observe(sql, settings, expected)


def differences(seen: dict, expected: Expected) -> list[str]:
    """Every way ``seen`` differs from ``expected``; empty when the worker made exactly the corpus's outcome."""
    out = []
    for table, n in sorted(expected.rows.items()):
        got = seen["rows"].get(table, 0)
        if got != n:
            out.append(f"{table}: {got} rows stored, {n} expected ({'lost' if got < n else 'duplicated'} {abs(got - n)})")
    for topic, n in sorted(expected.dead_letters.items()):
        got = seen["dead_letters"].get(topic, 0)
        if got != n:
            out.append(f"{topic}: {got} dead letters, {n} expected")
    if seen.get("dead_letters_without_reason"):
        out.append(f"{seen['dead_letters_without_reason']} dead letters without a reason")
    return out
