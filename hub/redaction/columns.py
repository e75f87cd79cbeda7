"""Every text-bearing column of every table the hub creates, declared once: structural or free text.

A column is one of:

- **structural** (``Column.shape``): it holds a value of a known shape (a UUID, a hex id, an id or
  service name, an enum, a route template, a version, a schema URL, a unit, a W3C ``tracestate``).
  A value that does not fit the shape, or that fits it but carries a detector hit (``jane.doe`` is
  a valid id and a name), is replaced by ``[REDACTED:<shape>]`` and never stored;
- **free text** (``text``, ``texts``, ``url``): masked by the detectors (``hub.redaction.detectors``
  and the core patterns of the policy); URLs also lose query strings and identifier segments;
- **attributes** (``attributes``, ``shared_attributes``, ``attributes_list``): OpenTelemetry
  attribute maps: keys named like patient data (and keys not shaped like keys) are dropped, values
  masked as free text; nested key-value lists and arrays arrive as JSON text and are masked as such,
  at any depth;
- **json**: a JSON document (an experiment event): every string in it, at any depth, is masked as
  free text; every value under a PHI-named key is replaced whole;
- **dead letters** (``dead_letter_key``, ``dead_letter_reason``, ``dead_letter_payload``): the key
  kept when it is an id, else replaced; the reason with every quoted value cut (decoders echo the
  offending value: ``Invalid enum value 'Jane Doe'``) and masked; the payload masked as text.

``DECLARATIONS`` is the one place. ``tests/integration/test_redaction_columns.py`` lists
``system.columns`` of a migrated store and fails on a String, Map, Array(String) or JSON column of
a table that is not declared here; ``docs/redaction.md``'s column table is generated from it
(``python -m hub.redaction.columns``) and checked by a test. Views are not declared: they read the
tables (``experiment_notes`` etc. read ``experiment_events.payload``), so they show redacted values.
"""

from __future__ import annotations

import re
from pathlib import Path
from dataclasses import dataclass
from typing import Final, Mapping

__all__ = ["Column", "DECLARATIONS", "SHAPES", "KINDS", "STAFF_FIELDS", "declaration", "markdown_table", "TEXT_TYPES"]


@dataclass(frozen=True)
class Shape:
    """A structural shape: a regular expression the whole value must match, and what it is."""

    pattern: str
    about: str
    #: run the detectors on a value that fits (False: the shape leaves no room for patient data)
    detect: bool = True
    ignore_case: bool = False


_HTTP_METHODS: Final = "GET|HEAD|POST|PUT|PATCH|DELETE|OPTIONS|TRACE|CONNECT|PROPFIND|PROPPATCH|MKCOL|COPY|MOVE|LOCK|UNLOCK"
_SEVERITIES: Final = ("TRACE|DEBUG|INFO|INFORMATION|NOTICE|WARN|WARNING|ERROR|ERR|CRITICAL|CRIT|FATAL|ALERT|"
                      "EMERGENCY|EMERG|SEVERE|FINE|FINER|FINEST|CONFIG|VERBOSE|PANIC")

#: Shapes of structural columns.
SHAPES: Final[Mapping[str, Shape]] = {
    "uuid": Shape(r"|[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}",
                  "a UUID (or empty)", detect=False),
    "hex": Shape(r"(?:[a-z0-9-]{1,16}:)?(?:[0-9a-fA-F]{16,128}|(?=[0-9a-fA-F]*[a-fA-F])[0-9a-fA-F]{1,15}|\d{0,5})",
                 "hex digits (trace/span ids, hashes), or empty; a short all-digit value (a record number) "
                 "does not fit; a short one with a detector hit neither"),
    "id": Shape(r"|[A-Za-z0-9@][A-Za-z0-9._:@/+=-]{0,127}",
                "an id or name without spaces, up to 128 characters; no run of 7 or more digits (an MRN, "
                "phone or SSN; `20YYMMDD` dates aside), no detector hit in it or in it with `._-` read as "
                "spaces; a misfit becomes `[REDACTED:id:<digest>]` (distinct values stay distinct: joins "
                "and pairing by id keep working)"),
    "experiment": Shape(r"|[A-Za-z0-9@][A-Za-z0-9._:@/+=-]{0,127}",
                        "an experiment id: the rules of `id`, but the random suffix of the hub's ids (`-` and 6 "
                        "to 8 hex digits with a letter: `exp-c2964655`) is no record number"),
    "alert": Shape(r"|[A-Za-z0-9@][A-Za-z0-9._:@/+=-]{0,127}",
                   "an alert id (`<experiment>/<rule>/<second>`): the rules of `id`, the experiment id in front "
                   "read as in `experiment`"),
    "endpoint": Shape(r"|[A-Za-z0-9@\[][A-Za-z0-9._:@/+=\[\]-]{0,127}",
                      "a backend: a server address with a port (`10.1.2.3:8080`, `[fd00::1]:443`, "
                      "`orders-db:5432`) kept as it is (a server, not a patient: an address without a port is "
                      "checked like an id); anything else an id (rules and digest as `id`)"),
    "word": Shape(r"|[A-Za-z][A-Za-z0-9_.:-]{0,63}", "one word of an enum-like vocabulary (kind, status, rule "
                  "measurement, comparison, severity, outcome, field name)"),
    "leg": Shape(r"|primary|shadow|canary", "`primary`, `shadow`, `canary`", detect=False),
    "phase": Shape(r"|baseline|injection|observation|recovery|[a-z0-9][a-z0-9_.-]{0,63}",
                   "an experiment phase (lower-case name)"),
    "comparison": Shape(r"|[<>=!]=?|[A-Za-z_]{1,16}", "a comparison (`>`, `>=`, `<`, `<=`, `==`, `!=` or a word)",
                        detect=False),
    "field": Shape(r"|[A-Za-z0-9_$.\[\]/:@*-]{1,256}", "a field path of a compared body (`$.items[0].price`)"),
    "method": Shape(rf"|(?:{_HTTP_METHODS})|[A-Z]{{1,16}}", "an HTTP method (upper-case word)"),
    "severity": Shape(rf"|(?:{_SEVERITIES})[1-4]?", "an OpenTelemetry/syslog severity name (any case)",
                      detect=False, ignore_case=True),
    "span_kind": Shape(r"|(?:SPAN_KIND_)?(?:UNSPECIFIED|INTERNAL|SERVER|CLIENT|PRODUCER|CONSUMER)|"
                       r"Unspecified|Internal|Server|Client|Producer|Consumer", "a span kind", detect=False),
    "status_code": Shape(r"|(?:STATUS_CODE_)?(?:UNSET|OK|ERROR)|Unset|Ok|Error", "a span status code", detect=False),
    "route": Shape(r"|/[A-Za-z0-9._~{}:@!$&'()*+,;=%/-]*|\*", "a route template after URL redaction (query cut, "
                   "identifier segments `{id}`), starting with `/`"),
    "url": Shape(r"|[A-Za-z][A-Za-z0-9+.-]*://[^\s]*|/[^\s]*", "a URL or path after URL redaction"),
    "version": Shape(r"|[vV]?\d{1,6}(?:\.\d{1,6}){0,3}(?:[-+._]?[0-9A-Za-z.-]{1,40})?",
                     "a version (`1.2.3`, `v2`, `0.48b0`, `1.0.0-rc.1+build.5`)"),
    "schema_url": Shape(r"|https?://[A-Za-z0-9.-]+(?::\d{1,5})?(?:/[A-Za-z0-9._~{}-]+)*/?",
                        "an http(s) URL without query, fragment or user info; identifier segments `{id}`"),
    "unit": Shape(r"(?=.{0,64}$)(?:[A-Za-z0-9%/.*^()\[\]_ -]|\{[a-z0-9_./ -]{1,32}\})*",
                  "a UCUM unit (`ms`, `By`, `1`, `{request}`, `{packet}/s`: annotations lower case)"),
    "metric_name": Shape(r"|[A-Za-z][A-Za-z0-9_./-]{0,254}", "an instrument name (OpenTelemetry rules)"),
    "tracestate": Shape(r"|[a-z0-9][a-z0-9_*/@-]{0,255}=[A-Za-z0-9_.:;+/{}-]{0,256}"
                        r"(?:\s*,\s*[a-z0-9][a-z0-9_*/@-]{0,255}=[A-Za-z0-9_.:;+/{}-]{0,256}){0,31}",
                        "a W3C tracestate (`vendor=value,...`, values without spaces)"),
    "actor": Shape(r"|[A-Za-z0-9@][A-Za-z0-9 ._@:/+()\[\]#,'-]{0,127}", "who did it: a user or component name, up to "
                   "128 characters, no detector hit (a staff e-mail address or a listed given name is replaced too)"),
    "staff": Shape(r"|[A-Za-z0-9@][A-Za-z0-9 ._@:/+()\[\]#,'-]{0,127}", "a person of the team named in an "
                   "experiment definition (`STAFF_FIELDS`): a name of one to four capitalised words or a handle "
                   "without spaces is kept as written (name detectors off), any other detector hit (an e-mail "
                   "address, a phone or record number, a name in a sentence) replaces it"),
    "topic": Shape(r"|[A-Za-z0-9._-]{1,249}", "a Kafka topic name"),
    "hub": Shape(r"|[A-Za-z0-9._:/@+=-]{1,512}", "written by the hub from its own values (tokens, checksums, "
                 "migration names): no spaces", detect=False),
}


@dataclass(frozen=True)
class Column:
    """How one column is redacted: ``kind`` (see ``KINDS``), and the shape for a structural one."""

    kind: str
    shape: str = ""
    note: str = ""

    def describe(self) -> str:
        if self.kind in ("struct", "structs"):
            each = "each element: " if self.kind == "structs" else ""
            misfit = "" if self.shape in ("id", "endpoint", "experiment", "alert") else (
                "; a misfit keeps its structure, each offending part (segment, tag list, e-mail address, date, "
                "street address) replaced by `[REDACTED:id:<digest>]`, so distinct names stay distinct series"
                if self.shape == "metric_name" else f"; a misfit becomes `[REDACTED:{self.shape}]`")
            return f"structural `{self.shape}`: {each}{SHAPES[self.shape].about}{misfit}"
        return KINDS[self.kind]


KINDS: Final[Mapping[str, str]] = {
    "struct": "structural",
    "structs": "structural (each element)",
    "text": "free text: detectors mask every hit; embedded URLs lose query strings and identifier segments",
    "texts": "free text, each element",
    "url": "URL: user info, query and fragment cut; identifier segments `{id}`; then masked as text; "
           "must then be a URL or path",
    "attributes": "attribute map: PHI-named keys and keys not shaped like keys dropped, URL keys as URLs, "
                  "every other value masked as free text (nested lists/maps are JSON text: masked at any depth)",
    "shared_attributes": "attribute map (resource/scope, shared by a batch's rows: redacted once per batch)",
    "attributes_list": "list of attribute maps, each as an attribute map",
    "json": "JSON document: every string at any depth masked as free text; every value under a PHI-named "
            "key replaced whole; keys not shaped like keys replaced",
    "dead_letter_key": "structural `id` (a misfit becomes `[REDACTED:key]`); the raw key stays on the source topic",
    "reason": "free text, every quoted value (`'...'`, `\"...\"`) first replaced by `'[REDACTED:value]'`",
    "dead_letter_reason": "free text, every quoted value (`'...'`, `\"...\"`) first replaced by `'[REDACTED:value]'`",
    "dead_letter_payload": "the record's bytes masked as text (UTF-8, else Latin-1 byte for byte), stored in "
                           "base64; the raw record stays on its source topic (topic/partition/offset)",
}

_S = Column
ID, WORD, HEX = _S("struct", "id"), _S("struct", "word"), _S("struct", "hex")
EXPERIMENT = _S("struct", "experiment")
BACKEND = _S("struct", "endpoint")
TEXT, URL = _S("text"), _S("url")

_OTEL_RESOURCE: Final = {
    "ResourceAttributes": _S("shared_attributes"), "ScopeAttributes": _S("shared_attributes"),
    "ResourceSchemaUrl": _S("struct", "schema_url"), "ScopeSchemaUrl": _S("struct", "schema_url"),
    "ScopeName": ID, "ScopeVersion": _S("struct", "version"), "ServiceName": ID,
    "ExperimentId": EXPERIMENT, "ExperimentPhase": _S("struct", "phase"),
}
_METRIC: Final = {
    **_OTEL_RESOURCE,
    "MetricName": _S("struct", "metric_name"), "MetricDescription": TEXT, "MetricUnit": _S("struct", "unit"),
    "Attributes": _S("attributes"),
    "Exemplars.FilteredAttributes": _S("attributes_list"),
    "Exemplars.SpanId": _S("structs", "hex"), "Exemplars.TraceId": _S("structs", "hex"),
}

#: Fields of an experiment definition that name people of the team, not patients: definition key ->
#: the person field of each of its entries. Each is checked against the ``staff`` shape
#: (``hub.redaction.events``): a name or handle is kept as written, anything else (a phone number, an
#: e-mail address, a sentence) replaced by ``[REDACTED:staff]``; the rest of the entry is free text.
#: The events' ``actor`` stays checked as its column is: it is typed per command by any client
#: (``--actor``, ``X-Hub-Actor``), not declared in a reviewed roster.
STAFF_FIELDS: Final[Mapping[str, str]] = {"participants": "name", "prerequisites": "owner", "environment": "approver"}

#: table -> column -> declaration. Tables only; views read these tables.
DECLARATIONS: Final[Mapping[str, Mapping[str, Column]]] = {
    "requests": {
        "experiment_id": EXPERIMENT, "phase": _S("struct", "phase"), "correlation_id": ID, "leg": _S("struct", "leg"),
        "gateway": ID, "route": _S("struct", "route"), "method": _S("struct", "method"), "backend": BACKEND,
        "response_hash": ID, "error": TEXT, "source": URL,
    },
    "shadow_pairs": {
        "experiment_id": EXPERIMENT, "phase": _S("struct", "phase"), "gateway": ID, "correlation_id": ID,
        "route": _S("struct", "route"), "method": _S("struct", "method"), "primary_backend": BACKEND,
        "shadow_backend": BACKEND, "secondary_backend": BACKEND, "outcome": WORD,
        "differing_fields": _S("structs", "field"), "noise_fields": _S("structs", "field"),
        "shadow_error": TEXT, "source": URL,
    },
    "alerts": {
        "kind": WORD, "alert_id": _S("struct", "alert"), "status": WORD, "experiment_id": EXPERIMENT, "rule": TEXT, "severity": WORD,
        "measurement": WORD, "comparison": _S("struct", "comparison"), "top_contributors": _S("json"),
        "example_request_ids": _S("structs", "id"), "message": TEXT, "action": WORD, "url": URL, "error": _S("reason"),
    },
    "experiment_events": {
        "experiment_id": EXPERIMENT, "kind": WORD, "actor": _S("struct", "actor"), "phase": _S("struct", "phase"),
        "payload": _S("json"), "refusal": _S("reason"),
    },
    "canary_verdicts": {
        "experiment_id": EXPERIMENT, "route": _S("struct", "route"), "metric": WORD, "verdict": WORD, "effect_kind": WORD,
        "canary_backend": BACKEND, "baseline_backend": BACKEND,
    },
    "dead_letters": {
        "source_topic": _S("struct", "topic"), "reason": _S("dead_letter_reason"), "key": _S("dead_letter_key"),
        "value": _S("dead_letter_payload"),
    },
    "otel_traces": {
        **{k: v for k, v in _OTEL_RESOURCE.items() if k not in ("ScopeAttributes", "ResourceSchemaUrl", "ScopeSchemaUrl")},
        "TraceId": HEX, "SpanId": HEX, "ParentSpanId": HEX, "TraceState": _S("struct", "tracestate"),
        "SpanName": TEXT, "SpanKind": _S("struct", "span_kind"), "SpanAttributes": _S("attributes"),
        "StatusCode": _S("struct", "status_code"), "StatusMessage": TEXT,
        "Events.Name": _S("texts"), "Events.Attributes": _S("attributes_list"),
        "Links.TraceId": _S("structs", "hex"), "Links.SpanId": _S("structs", "hex"),
        "Links.TraceState": _S("structs", "tracestate"), "Links.Attributes": _S("attributes_list"),
    },
    "otel_traces_trace_id_ts": {"TraceId": HEX},
    # Per-second aggregates (migration 0017): copies of the redacted columns of their raw tables.
    "requests_per_second": {
        "experiment_id": EXPERIMENT, "phase": _S("struct", "phase"), "route": _S("struct", "route"),
        "leg": _S("struct", "leg"), "gateway": ID, "backend": BACKEND, "source": URL,
    },
    # Its 5-second grain (migration 0018): the same columns.
    "requests_per_5_seconds": {
        "experiment_id": EXPERIMENT, "phase": _S("struct", "phase"), "route": _S("struct", "route"),
        "leg": _S("struct", "leg"), "gateway": ID, "backend": BACKEND, "source": URL,
    },
    "shadow_pairs_per_second": {
        "experiment_id": EXPERIMENT, "phase": _S("struct", "phase"), "route": _S("struct", "route"), "gateway": ID,
        "shadow_backend": BACKEND, "outcome": WORD, "source": URL,
    },
    "spans_per_second": {
        "ExperimentId": EXPERIMENT, "ExperimentPhase": _S("struct", "phase"), "ServiceName": ID,
        "StatusCode": _S("struct", "status_code"),
    },
    "otel_logs": {
        **_OTEL_RESOURCE,
        "TraceId": HEX, "SpanId": HEX, "SeverityText": _S("struct", "severity"), "Body": TEXT,
        "LogAttributes": _S("attributes"), "EventName": TEXT,
    },
    **{f"otel_metrics_{kind}": dict(_METRIC) for kind in ("gauge", "sum", "histogram", "exponential_histogram")},
    "otel_metrics_summary": {k: v for k, v in _METRIC.items() if not k.startswith("Exemplars.")},
    "sink_ledger": {"sink": _S("struct", "hub"), "topic": _S("struct", "topic"), "token": _S("struct", "hub")},
    "schema_migrations": {"name": _S("struct", "hub"), "checksum": _S("struct", "hub")},
}

#: Where each table's rows are redacted (for the docs).
WHERE: Final[Mapping[str, str]] = {
    "requests": "requests sink (HTTP, Kafka, gateway legs)",
    "shadow_pairs": "pairs sink",
    "alerts": "alerts sink",
    "experiment_events": "experiments sink (after the lifecycle fold)",
    "canary_verdicts": "written by the canary judge from stored (redacted) request rows",
    "dead_letters": "dead-letter publisher (table and dead-letter topic)",
    "otel_traces": "spans sink",
    "otel_traces_trace_id_ts": "materialized view of `otel_traces` (redacted rows)",
    "requests_per_second": "materialized view of `requests` (redacted rows)",
    "requests_per_5_seconds": "materialized view of `requests` (redacted rows)",
    "shadow_pairs_per_second": "materialized view of `shadow_pairs` (redacted rows)",
    "spans_per_second": "materialized view of `otel_traces` (redacted rows)",
    "otel_logs": "logs sink",
    "sink_ledger": "written by the sink from its own values",
    "schema_migrations": "written by the migrator from the schema files",
    **{t: "metrics sink" for t in DECLARATIONS if t.startswith("otel_metrics_")},
}

#: ClickHouse types that carry text (after unwrapping LowCardinality/Nullable/Array/Map).
TEXT_TYPES: Final = re.compile(r"\b(?:String|FixedString|JSON|Object|Dynamic|Variant)\b")


def declaration(table: str, column: str) -> Column | None:
    return DECLARATIONS.get(table, {}).get(column)


def markdown_table() -> str:
    """The column table of ``docs/redaction.md``: every declared column and what happens to it."""
    lines = ["| table | column | what happens to it | where |", "|---|---|---|---|"]
    for table in sorted(DECLARATIONS):
        for column, decl in DECLARATIONS[table].items():
            lines.append(f"| `{table}` | `{column}` | {decl.describe()} | {WHERE.get(table, '')} |")
    return "\n".join(lines) + "\n"


def write_docs() -> Path:
    """Put the table between ``docs/redaction.md``'s column markers, as
    ``python -m hub.redaction.columns`` does; returns the file written."""
    from hub.settings import REPO_ROOT

    doc = REPO_ROOT / "docs" / "redaction.md"
    begin, end = "<!-- columns:begin -->\n", "<!-- columns:end -->"
    text = doc.read_text()
    head, rest = text.split(begin, 1)
    doc.write_text(head + begin + markdown_table() + end + rest.split(end, 1)[1])
    return doc


if __name__ == "__main__":  # pragma: no cover - rewrites the docs table
    print(f"wrote the column table of {write_docs()}")
