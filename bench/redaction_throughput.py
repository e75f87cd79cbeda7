"""Redaction throughput: rows per second through the redactor alone, and the sink's work with and without it.

1. ``redactor``: decoded rows (request legs from ``generate_request_legs``; OTLP spans and logs with
   the attributes services usually send: method, route, ``url.path`` with ids, server address,
   status) go through ``Redactor`` (the declarations of ``hub.redaction.columns`` and every
   detector), in batches of 1,000, one pass after a warm-up pass. 1% of the request legs and of
   the log bodies carry a sentence with patient data (``hub.redaction.corpus``), the rest is clean.
2. ``sink``: the sink's own work per batch, in this process: decode the Kafka records, (redact),
   insert into a chDB store (the real engine, its own directory). Run twice on the same records,
   once without and once with redaction; the ratio is the sink's throughput with redaction over
   without.

    .venv/bin/python -m bench.redaction_throughput [--rows N]

The machine may be shared: figures vary from run to run; compare the two sides of one run.
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
import uuid

from bench.common import BenchContext, Result
from hub.otel.decode import decode_logs, decode_spans
from hub.records.decode import REQUEST_COLUMNS, RawMessage, decode_request_legs
from hub.records.generate import generate_request_legs
from hub.redaction import Redactor
from hub.redaction.corpus import KINDS, patients, sentence

BATCH = 1000
MAX_BYTES = 64 << 20


def _request_messages(n: int, dirty: float = 0.01) -> list[RawMessage]:
    rng = random.Random(3)
    people = patients(200, 3)
    out = []
    for i, (key, value) in enumerate(generate_request_legs(n, seed=11)):
        if rng.random() < dirty:
            doc = json.loads(value)
            p = rng.choice(people)
            kind = rng.choice(KINDS)
            doc["data"]["error"] = "upstream failed: " + sentence(kind, p.value(kind), rng)
            value = json.dumps(doc).encode()
        out.append(RawMessage("requests", 0, i, key, value, 0))
    return out


def _otlp_messages(n_records: int, per_record: int, signal: str) -> list[RawMessage]:
    rng = random.Random(5)
    people = patients(200, 5)
    now = time.time_ns()
    out = []
    for i in range(n_records):
        items = []
        for j in range(per_record):
            order = rng.randrange(10**4, 10**7)
            attrs = [{"key": "http.request.method", "value": {"stringValue": rng.choice(["GET", "POST"])}},
                     {"key": "http.route", "value": {"stringValue": "/api/orders/{id}"}},
                     {"key": "url.path", "value": {"stringValue": f"/api/orders/{order}"}},
                     {"key": "server.address", "value": {"stringValue": "orders.internal"}},
                     {"key": "http.response.status_code", "value": {"intValue": str(rng.choice([200, 200, 500]))}}]
            if signal == "spans":
                items.append({"traceId": "%032x" % rng.getrandbits(128), "spanId": "%016x" % rng.getrandbits(64),
                              "name": "GET /api/orders/{id}", "kind": 2, "startTimeUnixNano": str(now),
                              "endTimeUnixNano": str(now + 10**6), "attributes": attrs,
                              "status": {"code": 1}})
            else:
                body = f"order {order} served in {rng.randrange(1, 90)} ms"
                if rng.random() < 0.01:
                    p = rng.choice(people)
                    kind = rng.choice(KINDS)
                    body = "lookup failed: " + sentence(kind, p.value(kind), rng)
                items.append({"timeUnixNano": str(now), "severityNumber": 9, "severityText": "INFO",
                              "body": {"stringValue": body}, "attributes": attrs})
        resource = {"attributes": [{"key": "service.name", "value": {"stringValue": "orders"}}]}
        scope = {"name": "io.opentelemetry.http", "version": "1.2.0"}
        if signal == "spans":
            doc = {"resourceSpans": [{"resource": resource, "scopeSpans": [{"scope": scope, "spans": items}]}]}
        else:
            doc = {"resourceLogs": [{"resource": resource, "scopeLogs": [{"scope": scope, "logRecords": items}]}]}
        out.append(RawMessage(signal, 0, i, None, json.dumps(doc).encode(), 0))
    return out


def _batches(messages: list[RawMessage], size: int) -> list[list[RawMessage]]:
    return [messages[i:i + size] for i in range(0, len(messages), size)]


def redactor_alone(rows: int) -> dict[str, float]:
    """Rows per second through the redactor, per table."""
    out = {}
    requests = [decode_request_legs(b, MAX_BYTES) for b in _batches(_request_messages(rows), BATCH)]
    spans = [decode_spans(b, "auto", MAX_BYTES) for b in _batches(_otlp_messages(rows // 10, 10, "spans"), 100)]
    logs = [decode_logs(b, "auto", MAX_BYTES) for b in _batches(_otlp_messages(rows // 10, 10, "logs"), 100)]
    for name, batches, method in (("requests", requests, "requests"), ("otel_traces", spans, "spans"),
                                  ("otel_logs", logs, "logs")):
        n = sum(len(b.rows) for b in batches)
        for warm in (True, False):
            redactor = Redactor()  # a fresh one: its caches of clean values start empty
            originals = [list(b.rows) for b in batches]
            start = time.perf_counter()
            for b, rows_ in zip(batches, originals):
                b.rows = rows_
                getattr(redactor, method)(b)
            seconds = time.perf_counter() - start
            if not warm:
                out[name] = n / seconds
            for b, rows_ in zip(batches, originals):
                b.rows = rows_
    return out


def sink_with_and_without(rows: int) -> dict[str, float]:
    """Rows per second of decode (+ redact) + insert into chDB, for request legs."""
    from hub.settings import load_settings
    from hub.storage.client import Store, open_store
    from hub.storage.migrations import migrate

    scratch = tempfile.mkdtemp(prefix="bench-redaction-")
    settings = load_settings({"HUB_HOME": scratch}).with_overrides(
        database="bench_redaction", clickhouse_url=f"chdb://{scratch}/chdb")
    base = open_store(settings, create_database=False)
    base.command("CREATE DATABASE IF NOT EXISTS bench_redaction")
    store = Store(base._client, "bench_redaction", base.dsn)
    store._lock = base._lock
    migrate(store, settings)
    batches = _batches(_request_messages(rows), 5000)
    results = {}
    for label, redact in (("warm-up", True), ("without", False), ("with", True), ("without again", False),
                          ("with again", True)):
        store.command(f"TRUNCATE TABLE {store.database}.requests")
        redactor = Redactor()
        start = time.perf_counter()
        for batch in batches:
            decoded = decode_request_legs(batch, MAX_BYTES)
            if redact:
                decoded = redactor.requests(decoded)
            store.insert(f"{store.database}.requests", decoded.rows, REQUEST_COLUMNS, token=uuid.uuid4().hex)
        seconds = time.perf_counter() - start
        if label != "warm-up":
            results[label] = rows / seconds
    assert store.scalar(f"SELECT count() FROM {store.database}.requests") == rows
    return {"without": max(results["without"], results["without again"]),
            "with": max(results["with"], results["with again"])}


def run(ctx: BenchContext) -> list[Result]:
    rows = ctx.size("redaction_rows", 50_000)
    alone = redactor_alone(rows)
    sink = sink_with_and_without(rows)
    results = [Result(f"redactor-{table}", round(v), "rows/s") for table, v in alone.items()]
    results.append(Result("sink-requests-redacted", round(sink["with"]), "rows/s", baseline=round(sink["without"]),
                          details={"what": "decode + redact + insert into chDB vs decode + insert, best of two"}))
    return results


def benchmarks():
    return [("redaction", "redaction: rows/s through the redactor alone; decode+insert with vs without it",
             run)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=50_000)
    args = parser.parse_args()
    ctx = BenchContext(bootstrap="", scratch=None, sizes={"redaction_rows": args.rows})  # type: ignore[arg-type]
    for r in run(ctx):
        line = f"{r.name}: {r.value:,.0f} {r.unit}"
        if r.baseline:
            line += f" (without redaction: {r.baseline:,.0f} {r.unit}; ratio {r.ratio:.3f})"
        print(line)


if __name__ == "__main__":
    main()
