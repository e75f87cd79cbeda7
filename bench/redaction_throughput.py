"""Redaction throughput: rows per second through the redactor alone, and the sink's work with and without it.

1. ``redactor``: decoded rows (request legs from ``generate_request_legs``; OTLP spans and logs with
   the attributes services usually send: method, route, ``url.path`` with ids, server address,
   status) go through ``Redactor`` (the declarations of ``hub.redaction.columns`` and every
   detector), in batches of 1,000. 1% (``--dirty``) of the request legs and of
   the log bodies carry a sentence with patient data (``hub.redaction.corpus``), the rest is clean.
   Best of three passes, each starting with empty caches of known-clean values (the compiled
   patterns are kept, as in a running worker).
2. ``sink``: the sink's own work per batch, in this process: decode the Kafka records, (redact),
   insert into a chDB store (the real engine, its own directory). Three passes each without and
   with redaction, alternating, on the same records; the ratio of the best of each is the sink's
   throughput with redaction over without.

    .venv/bin/python -m bench.redaction_throughput [--rows N] [--dirty 0.01]

The machine may be shared: figures vary from run to run; compare the two sides of one run.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
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


def _otlp_messages(n_records: int, per_record: int, signal: str, dirty: float = 0.01) -> list[RawMessage]:
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
                if rng.random() < dirty:
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


def _cold(redactor: Redactor) -> Redactor:
    """The redactor with its caches of known-clean (and known masked) values emptied (its compiled
    patterns kept, as in a worker that has run for a while and then meets new values)."""
    e = redactor._engine
    for cache in (e._clean_text, e._masked_text, e._clean_url, e._clean_segments, e._clean_url_shape, e._clean_json,
                  *e._clean_shape.values()):
        cache.clear()
    return redactor


def redactor_alone(rows: int, passes: int = 3, dirty: float = 0.01) -> dict[str, float]:
    """Rows per second through the redactor, per table: the best of ``passes`` passes, each with
    empty caches of clean values."""
    out = {}
    requests = [decode_request_legs(b, MAX_BYTES) for b in _batches(_request_messages(rows, dirty), BATCH)]
    spans = [decode_spans(b, "auto", MAX_BYTES) for b in _batches(_otlp_messages(rows // 10, 10, "spans"), 100)]
    logs = [decode_logs(b, "auto", MAX_BYTES)
            for b in _batches(_otlp_messages(rows // 10, 10, "logs", dirty), 100)]
    redactor = Redactor()
    for name, batches, method in (("requests", requests, "requests"), ("otel_traces", spans, "spans"),
                                  ("otel_logs", logs, "logs")):
        n = sum(len(b.rows) for b in batches)
        originals = [list(b.rows) for b in batches]
        best = 0.0
        for _ in range(passes + 1):  # the first pass compiles what the patterns need: not counted
            _cold(redactor)
            for b, rows_ in zip(batches, originals):
                b.rows = rows_
            start = time.perf_counter()
            for b in batches:
                getattr(redactor, method)(b)
            seconds = time.perf_counter() - start
            best = max(best, n / seconds) if _ else best
        out[name] = best
        for b, rows_ in zip(batches, originals):
            b.rows = rows_
    return out


def sink_with_and_without(rows: int, passes: int = 3, dirty: float = 0.01) -> dict[str, float]:
    """Rows per second of decode (+ redact) + insert into chDB, for request legs: the best of
    ``passes`` passes each, alternating, the redactor's caches emptied before each pass; its
    scratch store is removed afterwards."""
    scratch = tempfile.mkdtemp(prefix="bench-redaction-")
    try:
        return _sink_passes(scratch, rows, passes, dirty)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _sink_passes(scratch: str, rows: int, passes: int, dirty: float) -> dict[str, float]:
    from hub.settings import load_settings
    from hub.storage.client import Store, open_store
    from hub.storage.migrations import migrate

    settings = load_settings({"HUB_HOME": scratch}).with_overrides(
        database="bench_redaction", clickhouse_url=f"chdb://{scratch}/chdb")
    base = open_store(settings, create_database=False)
    base.command("CREATE DATABASE IF NOT EXISTS bench_redaction")
    store = Store(base._client, "bench_redaction", base.dsn)
    store._lock = base._lock
    migrate(store, settings)
    batches = _batches(_request_messages(rows, dirty), 5000)
    redactor = Redactor()
    best = {"with": 0.0, "without": 0.0, "with_cpu": 0.0, "without_cpu": 0.0}
    for i in range(passes * 2 + 1):
        redact = i % 2 == 0  # the first pass (with) warms up and is not counted
        store.command(f"TRUNCATE TABLE {store.database}.requests")
        _cold(redactor)
        start, cpu_start = time.perf_counter(), time.process_time()
        for batch in batches:
            decoded = decode_request_legs(batch, MAX_BYTES)
            if redact:
                decoded = redactor.requests(decoded)
            store.insert(f"{store.database}.requests", decoded.rows, REQUEST_COLUMNS, token=uuid.uuid4().hex)
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu_start
        if i:
            key = "with" if redact else "without"
            best[key] = max(best[key], rows / seconds)
            # rows per CPU second of this process (the engine's threads included): steadier than
            # the wall clock on a machine shared with other work
            best[key + "_cpu"] = max(best[key + "_cpu"], rows / max(cpu, 1e-9))
    assert store.scalar(f"SELECT count() FROM {store.database}.requests") == rows
    return best


def run(ctx: BenchContext) -> list[Result]:
    rows = ctx.size("redaction_rows", 50_000)
    dirty = ctx.sizes.get("redaction_dirty", 0.01)
    alone = redactor_alone(rows, dirty=dirty)
    sink = sink_with_and_without(rows, dirty=dirty)
    results = [Result(f"redactor-{table}", round(v), "rows/s") for table, v in alone.items()]
    results.append(Result("sink-requests-redacted", round(sink["with"]), "rows/s", baseline=round(sink["without"]),
                          details={"what": "decode + redact + insert into chDB vs decode + insert, best of three"}))
    results.append(Result("sink-requests-redacted-cpu", round(sink["with_cpu"]), "rows/cpu-s",
                          baseline=round(sink["without_cpu"]),
                          details={"what": "the same passes in rows per CPU second of the process"}))
    return results


def benchmarks():
    return [("redaction", "redaction: rows/s through the redactor alone; decode+insert with vs without it",
             run)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--dirty", type=float, default=0.01,
                        help="share of request legs and log bodies carrying patient data (default 0.01)")
    args = parser.parse_args()
    ctx = BenchContext(bootstrap="", scratch=None,  # type: ignore[arg-type]
                       sizes={"redaction_rows": args.rows, "redaction_dirty": args.dirty})
    for r in run(ctx):
        line = f"{r.name}: {r.value:,.0f} {r.unit}"
        if r.baseline:
            line += f" (without redaction: {r.baseline:,.0f} {r.unit}; ratio {r.ratio:.3f})"
        print(line)


if __name__ == "__main__":
    main()
