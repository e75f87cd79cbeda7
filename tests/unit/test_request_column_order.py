"""A ``requests`` row is built and read by column name: with ``REQUEST_COLUMNS`` in another order,
the rows decoded from the same records hold the same values under the same names, and every
reader (pairing, the judge's rollups, custom-rule filters, correlation) sees the same data. The
judge's rollups read ``otel_traces`` and ``shadow_pairs`` rows by name too (``TRACE_COLUMNS``,
``PAIR_COLUMNS`` in another order give the same cells).

Each order runs in a fresh interpreter, the order set before any reader is imported (readers bind
the column positions when they are imported), and what the readers saw is compared.
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime, timezone

from hub.settings import REPO_ROOT

SCRIPT = r'''
import dataclasses, json, sys
from datetime import datetime, timedelta, timezone

import msgspec

import hub.records.request_leg as rl

if sys.argv[1] == "rotated":  # every column moves
    order = rl.REQUEST_COLUMNS[5:] + rl.REQUEST_COLUMNS[:5]
    rl.REQUEST_COLUMNS = order
    for name in order:
        setattr(rl, "REQ_" + name.upper(), order.index(name))
    rl.row_of = rl.compile_row(order)
READERS = ("hub.records.decode", "hub.abort.match", "hub.abort.rollup", "hub.shadow.pairing",
           "hub.experiments.correlate", "hub.pipeline", "hub.api.ingest")
assert not [m for m in READERS if m in sys.modules], "a reader was imported before the order was set"

import msgspec.structs
from hub.abort.match import failed, predicate
from hub.abort.rollup import request_cells
from hub.experiments import lifecycle as lc
from hub.experiments.correlate import TargetIndex, correlate_request_rows
from hub.experiments.definition import RecordMatch, parse_definition
from hub.records.decode import REQUEST_COLUMNS, RawMessage, decode_request_legs
from hub.shadow.pairing import LegView, PairingWindow

UTC = timezone.utc
T0 = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
DEFINITION = """
title: order
scenario: s
hypothesis: h
expected_outcome: e
steady_state: [{name: errors, sli: error_rate, source: requests, tolerance: {max: 0.05}}]
environment: {name: staging, kind: non-live, risk: low}
targets: {gateways: [gw-a]}
phases: [{name: baseline, planned_minutes: 1}, {name: injection, planned_minutes: 1}]
"""


def leg(kind, backend, status, latency, seconds, h, error=""):
    data = rl.RequestLeg(correlation_id="c-1", leg=kind, gateway="gw-a", route="/patients/{id}", method="GET",
                         backend=backend, status=status, latency_ms=latency, event_time=T0 + timedelta(seconds=seconds),
                         request_bytes=11, response_bytes=22, response_hash=h, error=error)
    return msgspec.json.encode(rl.new_event(data, source="/gw/gw-a", id=f"id-{kind}"))


values = [leg("primary", "patients-v1", 200, 12.5, 90, "aa"), leg("shadow", "patients-v2", 503, 40.0, 90.2, "bb", "boom")]
decoded = decode_request_legs([RawMessage("hub.requests", 0, i, None, v, 0) for i, v in enumerate(values)], 1_000_000)
assert not decoded.invalid, decoded.invalid

definition = msgspec.structs.replace(parse_definition(DEFINITION), id="exp-a")
state = lc.apply(None, lc.create(definition, "ana", T0))
for event in lc.start(state, "ana", T0 + timedelta(seconds=60), force=True):
    state = lc.apply(state, event)
placed = correlate_request_rows(TargetIndex([state]), decoded.rows)

window = PairingWindow(30.0)
pairs = [p for row in decoded.rows for p in window.add_row(row)] + window.flush()
five_xx = predicate(RecordMatch(status=["5xx"], route="/patients/{id}"))
cells = request_cells(placed)
print(json.dumps({
    "stored": [{c: str(v) for c, v in zip(REQUEST_COLUMNS, row)} for row in placed],
    "legs": [{k: str(v) for k, v in dataclasses.asdict(LegView.from_row(row)).items()} for row in decoded.rows],
    "failed": [failed(row) for row in decoded.rows],
    "five_xx": [five_xx(row) for row in decoded.rows],
    "pairs": [msgspec.to_builtins(p) for p in pairs],
    "cells": {e: sorted(repr((c.key(), c.count, c.errors, c.examples, c.kind)) for c in cs) for e, cs in cells.items()},
}, sort_keys=True, default=str))
'''


def seen(order: str) -> dict:
    out = subprocess.run([sys.executable, "-c", SCRIPT, order], cwd=REPO_ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout)


def test_rows_in_another_column_order_store_and_read_the_same_data():
    usual, rotated = seen("usual"), seen("rotated")
    # the usual order gives what the records say, so the comparison below is not vacuous
    primary, shadow = usual["stored"]
    assert (primary["correlation_id"], primary["leg"], primary["backend"], primary["status"], primary["latency_ms"],
            primary["experiment_id"], primary["phase"], primary["source"]) == (
        "c-1", "primary", "patients-v1", "200", "12.5", "exp-a", "baseline", "/gw/gw-a")
    assert (shadow["backend"], shadow["error"], shadow["response_hash"]) == ("patients-v2", "boom", "bb")
    assert usual["legs"][1]["backend"] == "patients-v2" and usual["legs"][0]["latency_ms"] == "12.5"
    assert usual["failed"] == [False, True] and usual["five_xx"] == [False, True]
    assert len(usual["pairs"]) == 1 and usual["cells"]["exp-a"]
    assert rotated == usual


SPANS_AND_PAIRS = r'''
import json, sys
from datetime import datetime, timezone

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

import hub.otel.decode as od
import hub.shadow.records as sr
from hub.records.decode import RawMessage

assert "hub.abort.rollup" not in sys.modules, "the rollup reader was imported before the order was set"
T0 = datetime(2026, 11, 30, 9, 0, 5, 250000, tzinfo=timezone.utc)
NS = int(T0.timestamp()) * 1_000_000_000 + 250_000_000


def span_record():
    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    attr = rs.resource.attributes.add()
    attr.key, attr.value.string_value = "service.name", "patients"
    spans = rs.scope_spans.add().spans
    for i, (ms, failed) in enumerate(((12.0, False), (40.0, True))):
        s = spans.add()
        s.trace_id, s.span_id, s.name = bytes([i + 1]) * 16, bytes([i + 1]) * 8, "GET /patients"
        s.start_time_unix_nano, s.end_time_unix_nano = NS, NS + int(ms * 1_000_000)
        s.status.code = 2 if failed else 1
        a = s.attributes.add()
        a.key, a.value.string_value = "experiment.id", "exp-a"
    return req.SerializeToString()


def pair_record(cid, outcome, latency):
    return sr.encode_pair(sr.ShadowPair(
        correlation_id=cid, gateway="gw-a", route="/patients/{id}", method="GET", primary_backend="patients-v1",
        shadow_backend="patients-v2", outcome=outcome, event_time=T0, latency_shadow_ms=latency,
        experiment_id="exp-a", phase="injection"), "/hub/pairing")


now = T0.timestamp()
spans = od.decode_spans([RawMessage("t", 0, 0, None, span_record(), 0)], "otlp_proto", 1_000_000, now=now)
pairs = sr.decode_pairs([RawMessage("t", 0, i, None, pair_record(*p), 0) for i, p in enumerate(
    (("c-1", "match", 15.0), ("c-2", "status_mismatch", 50.0), ("c-3", "primary_failed", 9.0)))], 1_000_000, now=now)
assert not spans.invalid and not pairs.invalid, (spans.invalid, pairs.invalid)
span_rows, pair_rows = spans.rows, pairs.rows

if sys.argv[1] == "rotated":  # every column moves; the rows are laid out in the new order
    def rotate(columns, rows, by):
        order = columns[by:] + columns[:by]
        return order, [tuple(dict(zip(columns, row))[c] for c in order) for row in rows]
    od.TRACE_COLUMNS, span_rows = rotate(od.TRACE_COLUMNS, span_rows, 7)
    sr.PAIR_COLUMNS, pair_rows = rotate(sr.PAIR_COLUMNS, pair_rows, 5)

from hub.abort.rollup import pair_cells, span_cells

print(json.dumps({kind: {e: sorted([c.key(), c.count, c.errors, c.examples, c.sketch.quantile(0.5)] for c in cs)
                         for e, cs in cells.items()}
                  for kind, cells in (("spans", span_cells(span_rows)), ("pairs", pair_cells(pair_rows)))},
                 sort_keys=True))
'''


def test_span_and_pair_rows_in_another_column_order_give_the_same_rollups():
    def cells(order: str) -> dict:
        out = subprocess.run([sys.executable, "-c", SPANS_AND_PAIRS, order], cwd=REPO_ROOT, capture_output=True,
                             text=True)
        assert out.returncode == 0, out.stderr[-3000:]
        return json.loads(out.stdout)

    usual, rotated = cells("usual"), cells("rotated")
    # the usual order gives what the records say, so the comparison below is not vacuous
    second = int(datetime(2026, 11, 30, 9, 0, 5, tzinfo=timezone.utc).timestamp())
    [spans] = usual["spans"]["exp-a"]
    assert spans[:4] == [[second, "spans", "", "GET /patients", "", "", "patients", ""], 2, 1, ["02" * 16]]
    [pairs] = usual["pairs"]["exp-a"]  # the pair whose primary failed is not counted
    assert pairs[:4] == [[second, "pairs", "shadow", "/patients/{id}", "gw-a", "patients-v2", "", ""], 2, 1, ["c-2"]]
    assert rotated == usual
