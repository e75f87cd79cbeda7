"""The data dictionary of docs/sql.md: every table and column of a migrated store, from
``system.columns``, with a sentence per table. Regenerate the section with
``python -m hub.sql.dictionary`` (it migrates a throw-away embedded store)."""

from __future__ import annotations

import re
import sys
import tempfile

from hub.settings import REPO_ROOT

DOC = REPO_ROOT / "docs" / "sql.md"
START, END = "<!-- dictionary:start -->", "<!-- dictionary:end -->"

TABLES = {
    "requests": "One row per gateway request leg (primary, shadow, canary), placed on its experiment and phase.",
    "dead_letters": "Records that could not be decoded or validated, with the reason and where they came from.",
    "shadow_pairs": ("One comparison per shadowed request: status and body match, latency difference, outcome, "
                     "noise. Outcome primary_failed: the primary failed (no answer, 5xx), so the pair says nothing "
                     "about the shadow and is no shadow mismatch; declared nondeterministic fields are never in "
                     "differing_fields."),
    "canary_verdicts": "Canary against baseline per route and metric: test, effect size, verdict and confidence.",
    "sink_ledger": "The sink's write-ahead ledger: one row per stored batch of one partition's offsets.",
    "experiment_events": "The experiment log: every lifecycle event with its actor and time (the audit trail), "
                         "forged and refused ones too: accepted says whether the lifecycle fold took it, refusal why not.",
    "experiments": "View: one row per experiment with its title, status, current phase and times (accepted events only, "
                   "as are the other experiment views).",
    "experiment_refused_events": "View: the experiment events the lifecycle fold refused, with the reason and their "
                                 "place in the log.",
    "experiment_phases": "View: one row per stretch of a phase, [start, end); end is NULL while it lasts.",
    "experiment_faults": "View: one row per fault, what and where, active during [start, end).",
    "experiment_notes": "View: every observation and surprise with its actor and time.",
    "alerts": "Alerts of the abort judge (firing, resolved) and the outcome of every action taken on them, from\n"
              "the topic `hub.alerts` (record format, kinds `alert` and `action`: `schemas/README.md`, \"Alert\n"
              "record\"). The worker stores any record on that topic that fits the format, so only the worker\n"
              "should be allowed to write it (`deploy/README.md`, Kafka ACLs). `outside_run`: the alert came\n"
              "outside the experiment's run (before its start, or after its end plus `abort_grace`) and\n"
              "triggered nothing; `latency_ms`: how long an action (a halt target) took to answer.",
    "otel_traces": "OpenTelemetry spans, in the Collector's ClickHouse exporter shape, plus experiment and phase.",
    "otel_traces_trace_id_ts": "Trace id to time range lookup, filled by otel_traces_trace_id_ts_mv.",
    "otel_traces_trace_id_ts_mv": "Materialized view that fills otel_traces_trace_id_ts on every span insert.",
    "otel_logs": "OpenTelemetry log records, in the exporter's shape, plus experiment and phase.",
    "otel_metrics_gauge": "OpenTelemetry gauge data points, one row each.",
    "otel_metrics_sum": "OpenTelemetry sum (counter) data points, one row each.",
    "otel_metrics_histogram": "OpenTelemetry explicit-bucket histogram data points, one row each.",
    "otel_metrics_exponential_histogram": "OpenTelemetry exponential histogram data points, one row each.",
    "otel_metrics_summary": "OpenTelemetry summary data points (quantiles), one row each.",
    "schema_migrations": "The migrations applied to this database, by version.",
    "requests_per_second": "Per-second aggregate of requests (filled by requests_per_second_mv on every insert): legs, "
                           "failed legs and latency sketch buckets (bucket, count) per experiment, phase, route, leg, "
                           "gateway, backend, status class and source; merge with sum()/sumMap() (hub.sql.aggregates).",
    "requests_per_second_mv": "Materialized view that fills requests_per_second on every insert into requests.",
    "requests_per_5_seconds": "requests_per_second at a 5-second grain (filled by requests_per_5_seconds_mv on every "
                              "insert into requests_per_second): second is the first second of a 5-second cell; the "
                              "same keys and columns. The latency quantile panels read its cells inside their range (hub.sql.aggregates).",
    "requests_per_5_seconds_mv": ("Materialized view that fills requests_per_5_seconds on every insert into "
                                  "requests_per_second (chained on requests_per_second_mv)."),
    "shadow_pairs_per_second": "Per-second aggregate of shadow_pairs (filled by shadow_pairs_per_second_mv): pairs per "
                               "experiment, phase, route, gateway, shadow backend, outcome, noise and source.",
    "shadow_pairs_per_second_mv": "Materialized view that fills shadow_pairs_per_second on every pair insert.",
    "spans_per_second": "Per-second aggregate of otel_traces (filled by spans_per_second_mv): spans and duration "
                        "sketch buckets (ms) per experiment, phase, service and status code.",
    "spans_per_second_mv": "Materialized view that fills spans_per_second on every span insert.",
}


def columns(store) -> list[tuple[str, str, str]]:
    """(table, column, type) of every table of the store's database, in table and column order."""
    rows = store.query("SELECT table, name, type FROM system.columns WHERE database = {db:String} "
                       "ORDER BY table, position", parameters={"db": store.database}).result_rows
    return [(t, c, ty) for t, c, ty in rows]


def render(store) -> str:
    out: list[str] = []
    current = None
    for table, column, type_ in columns(store):
        if table != current:
            if current is not None:
                out.append("")
            current = table
            out += [f"### `{table}`", "", TABLES.get(table, "(no description yet)"), "",
                    "| column | type |", "|---|---|"]
        out.append(f"| `{column}` | `{type_}` |")
    return "\n".join(out) + "\n"


def documented(text: str | None = None) -> dict[str, set[str]]:
    """table -> columns, as docs/sql.md's dictionary lists them."""
    text = DOC.read_text() if text is None else text
    section = text.split(START, 1)[1].split(END, 1)[0]
    tables: dict[str, set[str]] = {}
    current = None
    for line in section.splitlines():
        if m := re.match(r"### `([^`]+)`", line):
            current = tables.setdefault(m.group(1), set())
        elif (m := re.match(r"\| `([^`]+)` \|", line)) and current is not None:
            current.add(m.group(1))
    return tables


def main() -> int:
    from hub.settings import load_settings
    from hub.storage.client import open_store
    from hub.storage.migrations import migrate

    with tempfile.TemporaryDirectory() as home:
        settings = load_settings({"HUB_HOME": home})
        store = open_store(settings)
        try:
            migrate(store, settings)
            body = render(store)
        finally:
            store.close()
    text = DOC.read_text()
    head, rest = text.split(START, 1)
    DOC.write_text(head + START + "\n" + body + END + rest.split(END, 1)[1])
    print(f"wrote the data dictionary of {DOC}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
