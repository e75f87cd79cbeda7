"""Rows of every table built from a column constant are built by column name: with each constant in
another order (as if its definition were edited), the rows made from the same records hold the same
value under each column name. ``otel_traces``, ``otel_logs``, every ``otel_metrics_*`` table and
``shadow_pairs`` (decoded records); ``experiment_events`` (``event_row`` and the projection the
experiments sink stores), ``canary_verdicts`` and ``sink_ledger``.

Each order runs in a fresh interpreter that loads the declaring modules from their source with the
constants' definitions rotated, before anything else imports them, and prints every row as a
mapping of column name to value.
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime, timezone

from hub.settings import REPO_ROOT

#: Constant -> how far it is rotated (each by another amount, so no two move alike).
ROTATIONS = {
    "hub.otel.decode": {"TRACE_COLUMNS": 7, "LOG_COLUMNS": 5, "GAUGE_COLUMNS": 19, "SUM_COLUMNS": 11,
                        "HISTOGRAM_COLUMNS": 13, "EXP_HISTOGRAM_COLUMNS": 17, "SUMMARY_COLUMNS": 2},
    "hub.shadow.records": {"PAIR_COLUMNS": 3},  # phase first, experiment_id last: apart
}
#: The same for the small tables, in the order the modules are loaded (the projection imports the events).
SMALL_ROTATIONS = {
    "hub.experiments.events": {"EVENT_COLUMNS": 3},
    "hub.experiments.projection": {"PROJECTION_COLUMNS": 5},
    "hub.shadow.canary": {"VERDICT_COLUMNS": 4},
    "hub.storage.sink": {"LEDGER_COLUMNS": 3},
}
#: The observed time of the second log record (it has no time of its own), as the script sets it.
OBSERVED_NS = int(datetime(2026, 11, 30, 9, 0, 5, tzinfo=timezone.utc).timestamp()) * 1_000_000_000 + 250_000_099

LOADER = r'''
import ast, json, sys, types
from datetime import datetime, timezone
from pathlib import Path

ROTATIONS = json.loads(sys.argv[1])
assert not [m for m in ROTATIONS if m in sys.modules], "a module was imported before its columns were set"


def load(name, rotations):
    """The module ``name`` from its source, each constant of ``rotations`` rotated where it is defined."""
    assert name not in sys.modules, f"{name} was imported before its columns were set"
    path = Path(*name.split(".")).with_suffix(".py").resolve()
    tree = ast.parse(path.read_text(), str(path))
    seen = set()
    for node in tree.body:
        target = node.targets[0] if isinstance(node, ast.Assign) else getattr(node, "target", None)
        if isinstance(target, ast.Name) and target.id in rotations and node.value is not None:
            node.value = ast.Call(ast.Name("_rotate", ast.Load()),
                                  [node.value, ast.Constant(rotations[target.id])], [])
            seen.add(target.id)
    assert seen == set(rotations), f"not defined in {path}: {set(rotations) - seen}"
    module = types.ModuleType(name)
    module.__file__, module.__package__ = str(path), name.rpartition(".")[0]
    module._rotate = lambda columns, by: columns[by:] + columns[:by]
    sys.modules[name] = module
    exec(compile(ast.fix_missing_locations(tree), str(path), "exec"), module.__dict__)
    return module
'''

SCRIPT = LOADER + r'''
if sys.argv[2] == "rotated":
    od, sr = (load(name, ROTATIONS[name]) for name in ("hub.otel.decode", "hub.shadow.records"))
else:
    import hub.otel.decode as od
    import hub.shadow.records as sr

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from hub.records.decode import RawMessage

T0 = datetime(2026, 11, 30, 9, 0, 5, 250000, tzinfo=timezone.utc)
NS = int(T0.timestamp()) * 1_000_000_000 + 250_000_000


def put(attrs, **values):
    for key, value in values.items():
        a = attrs.add()
        a.key = key.replace("_", ".")
        if isinstance(value, bool):
            a.value.bool_value = value
        elif isinstance(value, int):
            a.value.int_value = value
        else:
            a.value.string_value = value


def scoped(req, resources, scopes, name):
    """The first scope of the first resource of ``req``, both with attributes and schema URLs."""
    r = getattr(req, resources).add()
    put(r.resource.attributes, service_name="patients", experiment_id="exp-r", deployment="blue")
    r.schema_url = "https://schemas/r"
    s = getattr(r, scopes).add()
    s.scope.name, s.scope.version, s.scope.dropped_attributes_count = name, "1.2." + name[-1], 4
    put(s.scope.attributes, scope_kind="library")
    s.schema_url = "https://schemas/" + name
    return s


def spans():
    req = ExportTraceServiceRequest()
    ss = scoped(req, "resource_spans", "scope_spans", "tracer-1")
    for i in range(2):
        s = ss.spans.add()
        s.trace_id, s.span_id, s.parent_span_id = bytes([i + 1]) * 16, bytes([i + 3]) * 8, bytes([i + 5]) * 8
        s.trace_state, s.name, s.kind = f"k=v{i}", f"GET /patients/{i}", 2 + i
        s.start_time_unix_nano, s.end_time_unix_nano = NS + i, NS + i + 12_000_000 * (i + 1)
        s.status.code, s.status.message = 1 + i, "boom" * i
        put(s.attributes, http_route="/patients/{id}", retries=i, experiment_phase="injection")
        e = s.events.add()
        e.time_unix_nano, e.name = NS + 7, "retry"
        put(e.attributes, attempt=2)
        link = s.links.add()
        link.trace_id, link.span_id, link.trace_state = bytes([9]) * 16, bytes([8]) * 8, "l=1"
        put(link.attributes, link_kind="follows")
    return req.SerializeToString()


def logs():
    req = ExportLogsServiceRequest()
    sl = scoped(req, "resource_logs", "scope_logs", "logger-2")
    for i, body in enumerate(("served in 12 ms", 42)):
        r = sl.log_records.add()
        r.time_unix_nano, r.observed_time_unix_nano = (NS + i) * (1 - i), NS + 99
        r.trace_id, r.span_id, r.flags = bytes([i + 1]) * 16, bytes([i + 2]) * 8, 257
        r.severity_text, r.severity_number, r.event_name = "WARN", 13, f"event-{i}"
        if isinstance(body, str):
            r.body.string_value = body
        else:
            r.body.int_value = body
        put(r.attributes, experiment_id="exp-l", code=i)
    return req.SerializeToString()


def metrics():
    req = ExportMetricsServiceRequest()
    sm = scoped(req, "resource_metrics", "scope_metrics", "meter-3")
    for kind in ("gauge", "sum", "histogram", "exponential_histogram", "summary"):
        m = sm.metrics.add()
        m.name, m.description, m.unit = f"{kind}.metric", f"the {kind}", "ms"
        data = getattr(m, kind)
        if kind != "gauge" and kind != "summary":
            data.aggregation_temporality = 2
        if kind == "sum":
            data.is_monotonic = True
        dp = data.data_points.add()
        dp.start_time_unix_nano, dp.time_unix_nano, dp.flags = NS - 1000, NS + 5, 1
        put(dp.attributes, route="/patients", experiment_phase="recovery")
        if kind in ("gauge", "sum"):
            dp.as_int = 7
        else:
            dp.count, dp.sum = 9, 31.5
        if kind in ("histogram", "exponential_histogram"):
            dp.min, dp.max = 0.5, 12.0
        if kind == "histogram":
            dp.bucket_counts.extend([1, 5, 3])
            dp.explicit_bounds.extend([1.0, 10.0])
        if kind == "exponential_histogram":
            dp.scale, dp.zero_count = 3, 1
            dp.positive.offset, dp.negative.offset = 2, -1
            dp.positive.bucket_counts.extend([4, 2])
            dp.negative.bucket_counts.extend([1])
        if kind == "summary":
            for q, v in ((0.5, 2.0), (0.99, 11.0)):
                qv = dp.quantile_values.add()
                qv.quantile, qv.value = q, v
        else:
            ex = dp.exemplars.add()
            ex.time_unix_nano, ex.as_double = NS + 3, 2.5
            ex.span_id, ex.trace_id = bytes([6]) * 8, bytes([7]) * 16
            put(ex.filtered_attributes, user="u-1")
    return req.SerializeToString()


def pair(cid, outcome, latency):
    return sr.encode_pair(sr.ShadowPair(
        correlation_id=cid, gateway="gw-a", route="/patients/{id}", method="GET", primary_backend="patients-v1",
        shadow_backend="patients-v2", secondary_backend="patients-v1b", outcome=outcome, event_time=T0,
        primary_status=200, shadow_status=503, secondary_status=200, status_match=False, body_match=True,
        latency_primary_ms=12.0, latency_shadow_ms=latency, latency_diff_ms=latency - 12.0, noise=True,
        differing_fields=["$.a"], noise_fields=["$.t"], shadow_error="timeout", experiment_id="exp-p",
        phase="injection"), "/hub/pairing")


def message(value, offset=0):
    return RawMessage("t", 3, offset, None, value, 0)


now = T0.timestamp()
decoded = {
    "otel_traces": (od.TRACE_COLUMNS, od.decode_spans([message(spans())], "otlp_proto", 1 << 20, now=now)),
    "otel_logs": (od.LOG_COLUMNS, od.decode_logs([message(logs())], "otlp_proto", 1 << 20, now=now)),
    "shadow_pairs": (sr.PAIR_COLUMNS, sr.decode_pairs([message(pair(f"c-{i}", *p), 40 + i) for i, p in enumerate(
        (("status_mismatch", 50.0), ("match", 15.0)))], 1 << 20, now=now)),
}
batch = od.decode_metrics([message(metrics())], "otlp_proto", 1 << 20, now=now)
assert [od.GAUGE_COLUMNS, od.SUM_COLUMNS, od.HISTOGRAM_COLUMNS, od.EXP_HISTOGRAM_COLUMNS, od.SUMMARY_COLUMNS] == [
    columns for _, columns in od.METRIC_TABLES.values()], "METRIC_TABLES does not hold the metric constants"
for kind, (table, columns) in od.METRIC_TABLES.items():
    decoded[table] = (columns, batch.as_decoded(kind))
out = {}
for table, (columns, b) in decoded.items():
    assert not b.invalid, (table, b.invalid)
    out[table] = {"columns": list(columns), "rows": [{c: repr(v) for c, v in zip(columns, row, strict=True)}
                                                      for row in b.rows]}

# Correlation places spans and pairs that name no experiment: each reads and writes the experiment
# columns wherever they are.
from datetime import timedelta

import msgspec.structs

from hub.experiments import lifecycle as lc
from hub.experiments.correlate import TargetIndex, correlate_pair_rows, correlate_span_rows
from hub.experiments.definition import Targets, load_definition

definition = msgspec.structs.replace(load_definition(Path("examples/experiments/patient-api-db-failover.yaml")),
                                     id="exp-c", targets=Targets(gateways=["gw-a"], services=["patients"]))
state = lc.apply(None, lc.create(definition, "ana", T0 - timedelta(minutes=5)))
for event in lc.start(state, "ana", T0 - timedelta(minutes=1), force=True):
    state = lc.apply(state, event)


def unplaced(columns, rows, *names):
    """``rows`` with the columns ``names`` emptied."""
    at = [columns.index(name) for name in names]
    return [tuple("" if i in at else v for i, v in enumerate(row)) for row in rows]


index = TargetIndex([state])
for table, columns, rows in (
        ("otel_traces", od.TRACE_COLUMNS, correlate_span_rows(index, unplaced(
            od.TRACE_COLUMNS, decoded["otel_traces"][1].rows, "ExperimentId", "ExperimentPhase"))),
        ("shadow_pairs", sr.PAIR_COLUMNS, correlate_pair_rows(index, unplaced(
            sr.PAIR_COLUMNS, decoded["shadow_pairs"][1].rows, "experiment_id", "phase")))):
    out["correlated " + table] = [{c: repr(v) for c, v in zip(columns, row, strict=True)} for row in rows]
out["pair_positions"] = [[repr(row[getattr(sr, name)]) for name in ("PAIR_ID", "PAIR_TIME", "PAIR_PARTITION",
                                                                     "PAIR_OFFSET")] for row in decoded["shadow_pairs"][1].rows]
print(json.dumps(out, sort_keys=True))
'''


SMALL_SCRIPT = LOADER + r'''
if sys.argv[2] == "rotated":
    ev, pr, cn, sk = (load(name, ROTATIONS[name]) for name in ROTATIONS)
else:
    import hub.experiments.events as ev
    import hub.experiments.projection as pr
    import hub.shadow.canary as cn
    import hub.storage.sink as sk

import itertools
import uuid
from datetime import timedelta

from hub.experiments import lifecycle as lc
from hub.experiments.definition import load_definition
from hub.records.decode import RawMessage

T0 = datetime(2026, 11, 30, 9, 0, 5, 250000, tzinfo=timezone.utc)
defn = load_definition(Path("examples/experiments/patient-api-db-failover.yaml"))
state, events = None, []
ids = itertools.count(1)
uuid.uuid4 = lambda: uuid.UUID(int=next(ids), version=4)  # the same event ids in both runs


def do(*made):
    global state
    for e in made:
        state = lc.apply(state, e)
        events.append(e)


do(lc.create(defn, "amara", T0))
do(lc.check_prerequisites(state, [{"item": p.item, "done": True} for p in state.prerequisites], "amara",
                          T0 + timedelta(seconds=1)))
do(*lc.start(state, "amara", T0 + timedelta(seconds=2)))
do(lc.change_phase(state, "injection", "jonas", T0 + timedelta(seconds=3)))
messages = [RawMessage("hub.experiments", 2, 10 + i, e.experiment_id.encode(), ev.encode_event(e), 0)
            for i, e in enumerate(events)]
# the last event again (a redelivery), and one under another experiment's key: both refused
messages.append(RawMessage("hub.experiments", 2, 10 + len(events), messages[-1].key, messages[-1].value, 0))
messages.append(RawMessage("hub.experiments", 2, 11 + len(events), b"other", messages[-1].value, 0))
projected = pr.decode_experiment_events(messages, 1 << 20)
assert not projected.invalid, projected.invalid
verdict = cn.Verdict("exp-c", "/patients/{id}", "latency", "fail", 0.97, 0.03, 0.41, "cliffs_delta", 120, 118, 48.5,
                     31.0, "patients-v2", "patients-v1", judged_at=T0)
entry = sk.ledger_entry(sink="requests", topic="hub.requests", partition=3, first_offset=1200, last_offset=1299,
                        token="requests:hub.requests:3:1200-1299", rows=97, invalid=3)


def by_name(columns, rows):
    return {"columns": list(columns), "rows": [{c: repr(v) for c, v in zip(columns, row, strict=True)}
                                               for row in rows]}


print(json.dumps({
    "experiment_events": by_name(ev.EVENT_COLUMNS, [ev.event_row(e) for e in events]),
    "projection": by_name(pr.PROJECTION_COLUMNS, projected.rows),
    "canary_verdicts": by_name(cn.VERDICT_COLUMNS, [verdict.row()]),
    "sink_ledger": by_name(sk.LEDGER_COLUMNS, [entry]),
}, sort_keys=True))
'''


def decoded(order: str, script: str = SCRIPT, rotations: dict = ROTATIONS) -> dict:
    out = subprocess.run([sys.executable, "-c", script, json.dumps(rotations), order], cwd=REPO_ROOT,
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout)


def test_rows_decoded_with_rotated_column_constants_hold_the_same_values_by_name():
    usual, rotated = decoded("usual"), decoded("rotated")
    tables = {"otel_traces", "otel_logs", "shadow_pairs", "otel_metrics_gauge", "otel_metrics_sum",
              "otel_metrics_histogram", "otel_metrics_exponential_histogram", "otel_metrics_summary"}
    assert set(usual) - {"pair_positions", "correlated otel_traces", "correlated shadow_pairs"} == tables
    for table in tables:  # every constant did move, and every table has rows
        assert rotated[table]["columns"] != usual[table]["columns"], table
        assert sorted(rotated[table]["columns"]) == sorted(usual[table]["columns"]), table
        assert usual[table]["rows"], table
    # the usual order gives what the records say, so the comparison below is not vacuous
    span = usual["otel_traces"]["rows"][1]
    assert (span["SpanKind"], span["StatusCode"], span["StatusMessage"], span["Duration"], span["ServiceName"],
            span["ExperimentId"], span["ExperimentPhase"], span["Links.TraceState"]) == (
        "'Client'", "'Error'", "'boom'", "24000000", "'patients'", "'exp-r'", "'injection'", "['l=1']")
    log = usual["otel_logs"]["rows"][1]
    assert (log["Body"], log["SeverityNumber"], log["TraceFlags"], log["Timestamp"], log["ExperimentId"],
            log["ScopeSchemaUrl"], log["ResourceSchemaUrl"]) == (
        "'42'", "13", "1", str(OBSERVED_NS), "'exp-l'", "'https://schemas/logger-2'", "'https://schemas/r'")
    [hist] = usual["otel_metrics_histogram"]["rows"]
    assert (hist["Count"], hist["Sum"], hist["BucketCounts"], hist["AggregationTemporality"], hist["Max"],
            hist["ScopeDroppedAttrCount"], hist["Exemplars.SpanId"], hist["ExperimentPhase"]) == (
        "9", "31.5", "[1, 5, 3]", "2", "12.0", "4", "['0606060606060606']", "'recovery'")
    [total] = usual["otel_metrics_sum"]["rows"]
    assert (total["Value"], total["IsMonotonic"], total["MetricUnit"]) == ("7.0", "True", "'ms'")
    [expo] = usual["otel_metrics_exponential_histogram"]["rows"]
    assert (expo["PositiveOffset"], expo["NegativeOffset"], expo["NegativeBucketCounts"]) == ("2", "-1", "[1]")
    [summary] = usual["otel_metrics_summary"]["rows"]
    assert (summary["ValueAtQuantiles.Value"], summary["Flags"]) == ("[2.0, 11.0]", "1")
    first = usual["shadow_pairs"]["rows"][0]
    assert (first["outcome"], first["shadow_status"], first["latency_diff_ms"], first["source_offset"],
            first["secondary_backend"], first["noise_fields"]) == (
        "'status_mismatch'", "503", "38.0", "40", "'patients-v1b'", "['$.t']")
    assert [p[2:] for p in usual["pair_positions"]] == [["3", "40"], ["3", "41"]]

    # correlation fills the experiment columns of spans and pairs that name none, and only those
    for table, (experiment, phase) in (("otel_traces", ("ExperimentId", "ExperimentPhase")),
                                       ("shadow_pairs", ("experiment_id", "phase"))):
        placed = usual["correlated " + table]
        assert [(r[experiment], r[phase]) for r in placed] == [("'exp-c'", "'baseline'")] * len(placed), table
        assert [{c: v for c, v in r.items() if c not in (experiment, phase)} for r in placed] == [
            {c: v for c, v in r.items() if c not in (experiment, phase)} for r in usual[table]["rows"]], table

    for table in tables:
        assert rotated[table]["rows"] == usual[table]["rows"], table
    assert rotated["pair_positions"] == usual["pair_positions"]
    assert rotated["correlated otel_traces"] == usual["correlated otel_traces"]
    assert rotated["correlated shadow_pairs"] == usual["correlated shadow_pairs"]


def test_event_projection_verdict_and_ledger_rows_with_rotated_column_constants_hold_the_same_values_by_name():
    usual, rotated = decoded("usual", SMALL_SCRIPT, SMALL_ROTATIONS), decoded("rotated", SMALL_SCRIPT, SMALL_ROTATIONS)
    assert set(usual) == {"experiment_events", "projection", "canary_verdicts", "sink_ledger"}
    for table in usual:  # every constant did move, and every table has rows
        assert rotated[table]["columns"] != usual[table]["columns"], table
        assert sorted(rotated[table]["columns"]) == sorted(usual[table]["columns"]), table
        assert usual[table]["rows"], table
    # the usual order gives what the records say, so the comparison below is not vacuous
    phase = usual["experiment_events"]["rows"][-1]
    assert (phase["kind"], phase["phase"], phase["actor"], phase["sequence"]) == (
        "'phase_changed'", "'injection'", "'jonas'", "5")
    projected = usual["projection"]["rows"]
    assert [(r["sequence"], r["accepted"], r["source_partition"], r["source_offset"]) for r in projected] == [
        ("1", "1", "2", "10"), ("2", "1", "2", "11"), ("3", "1", "2", "12"), ("4", "1", "2", "13"),
        ("5", "1", "2", "14"), ("5", "0", "2", "15"), ("5", "0", "2", "16")]
    assert [r["refusal"][1:12] for r in projected[-2:]] == ["duplicate: ", "wrong key: "]
    assert all(r["refusal"] == "''" for r in projected[:5])
    assert [{c: r[c] for c in usual["experiment_events"]["columns"]} for r in projected[:5]] == usual[
        "experiment_events"]["rows"]
    [verdict] = usual["canary_verdicts"]["rows"]
    assert (verdict["verdict"], verdict["p_value"], verdict["canary_samples"], verdict["baseline_value"],
            verdict["canary_backend"], verdict["baseline_backend"]) == (
        "'fail'", "0.03", "120", "31.0", "'patients-v2'", "'patients-v1'")
    assert usual["sink_ledger"]["rows"] == [{
        "sink": "'requests'", "topic": "'hub.requests'", "partition": "3", "first_offset": "1200",
        "last_offset": "1299", "token": "'requests:hub.requests:3:1200-1299'", "rows": "97", "invalid": "3"}]

    for table in usual:
        assert rotated[table]["rows"] == usual[table]["rows"], table
