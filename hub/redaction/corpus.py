"""A seeded corpus of synthetic patients, placed in every field of every ingest path.

Nothing here is real: given names come from ``hub.redaction.detectors.GIVEN_NAMES``, surnames are
made of syllables (``Brambleworth``, ``Quillfennick``) so that a search for one finds nothing but
the seed, and every number is drawn from a seeded ``random.Random``.

- ``patients(n, seed)``: ``n`` patients with ten identifiers each (name, MRN, SSN, date of birth,
  phone, e-mail, street address, insurance id, member id, IP address), each identifier in one of
  many formats;
- ``sentence(kind, value, rng)``: the identifier inside realistic text (a log line, an error, a
  note typed during a gameday), with or without a cue word, in JSON with any spacing, in a URL path;
- ``Seed``: one identifier as placed, with the strings that must never be found in the store
  (``needles``: the value, and for names the surname alone, for numbers the longest digit run);
- ``records(...)``: the corpus as Kafka records (``(topic attribute, key, value)``) for every topic
  the worker reads (requests, pairs, alerts, experiment events, OTLP spans/logs/metrics as JSON and
  as protobuf), plus records the decoders refuse (dead letters), each field holding one seed.

Used by ``tests/integration/test_redaction_corpus.py`` (through a real worker), the property test
and ``bench/redaction_recall.py`` (recall side by side with Presidio's pattern recognizers).
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import random
import re
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

from hub.redaction.detectors import GIVEN_NAMES

__all__ = ["KINDS", "Patient", "Seed", "patients", "sentence", "values", "Corpus", "build_corpus"]

UTC = dt.timezone.utc
KINDS = ("name", "mrn", "ssn", "dob", "phone", "email", "address", "insurance", "member", "ip")

_SYLLABLES = ("bram", "ble", "worth", "quill", "fen", "nick", "thorn", "wick", "ash", "combe", "hollo", "way",
              "marl", "stead", "pen", "darrow", "vex", "ford", "gild", "ridge", "tam", "sorrel", "lark", "hurst",
              "oak", "lund", "brisk", "mere", "calder", "wyn", "rook", "shaw", "fell", "by", "nor", "cott")
_STREETS = ("Maple", "Harbor", "Willow", "Cedar Hill", "Old Mill", "Kingsbridge", "Elm", "Chestnut", "Beacon",
            "Prospect", "Lakeview", "Juniper")
_STREET_TYPES = ("Street", "St.", "Avenue", "Ave", "Road", "Rd", "Boulevard", "Lane", "Drive", "Court", "Way",
                 "Place", "Terrace")
_CITIES = (("Boston", "MA", "02115"), ("Springfield", "IL", "62704"), ("Portland", "OR", "97205"),
           ("Albany", "NY", "12207"), ("Austin", "TX", "78701"))
_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
           "November", "December")


@dataclass(frozen=True)
class Patient:
    first: str
    last: str
    mrn: str
    ssn: str
    dob: str
    phone: str
    email: str
    address: str
    insurance: str
    member: str
    ip: str

    @property
    def name(self) -> str:
        return f"{self.first} {self.last}"

    def value(self, kind: str) -> str:
        return self.name if kind == "name" else getattr(self, kind)


def _surname(rng: random.Random) -> str:
    return "".join(rng.choice(_SYLLABLES) for _ in range(rng.randint(2, 3))).capitalize()


def _dob(rng: random.Random) -> str:
    y, m, d = rng.randint(1931, 2012), rng.randint(1, 12), rng.randint(1, 28)
    mon = _MONTHS[m - 1]
    return rng.choice([
        f"{m:02d}/{d:02d}/{y}", f"{m}/{d}/{y}", f"{d:02d}.{m:02d}.{y}", f"{y}-{m:02d}-{d:02d}",
        f"{mon} {d}, {y}", f"{d} {mon} {y}", f"{d:02d}-{mon[:3]}-{y}", f"{mon[:3]} {d} {y}",
        f"{y}/{m:02d}/{d:02d}", f"{d:02d}-{m:02d}-{y}",
    ])


def _phone(rng: random.Random) -> str:
    a, b, c = rng.randint(201, 989), rng.randint(200, 999), rng.randint(0, 9999)
    return rng.choice([f"({a}) {b}-{c:04d}", f"{a}-{b}-{c:04d}", f"{a}.{b}.{c:04d}", f"+1 {a} {b} {c:04d}",
                       f"+1{a}{b}{c:04d}", f"+1 ({a}) {b}-{c:04d}", f"{a} {b} {c:04d}"])


def _ssn(rng: random.Random) -> str:
    a, b, c = rng.randint(100, 665), rng.randint(10, 99), rng.randint(1000, 9999)
    return rng.choice([f"{a}-{b}-{c}", f"{a} {b} {c}", f"{a}{b}{c}", f"{a}.{b}.{c}"])


def _mrn(rng: random.Random) -> str:
    n = rng.randint(10**6, 10**9 - 1)
    return rng.choice([f"{n:09d}", f"MRN-{n:08d}", f"MRN{n:09d}", f"E{n:08d}", f"{n:09d}"])


def _address(rng: random.Random) -> str:
    city, state, zipcode = rng.choice(_CITIES)
    street = f"{rng.randint(2, 9899)} {rng.choice(_STREETS)} {rng.choice(_STREET_TYPES)}"
    return rng.choice([street, f"{street}, Apt {rng.randint(1, 40)}{rng.choice('ABCD')}",
                       f"{street}, {city}, {state} {zipcode}", f"PO Box {rng.randint(10, 99999)}"])


def _mbi(rng: random.Random) -> str:
    letters = "ACDEFGHJKMNPQRTUVWXY"
    c = lambda: rng.choice(letters)  # noqa: E731
    d = lambda: str(rng.randint(0, 9))  # noqa: E731
    return f"{rng.randint(1, 9)}{c()}{c()}{d()}-{c()}{c()}{d()}-{c()}{c()}{d()}{d()}"


def _insurance(rng: random.Random) -> str:
    return rng.choice([f"XYZ{rng.randint(10**8, 10**9 - 1)}", f"W{rng.randint(10**8, 10**9 - 1)}",
                       _mbi(rng), f"BCBS-{rng.randint(10**6, 10**7 - 1)}-{rng.randint(10, 99)}",
                       f"H{rng.randint(10**7, 10**8 - 1)}01"])


def _member(rng: random.Random) -> str:
    return rng.choice([f"MBR-{rng.randint(10**7, 10**8 - 1)}", f"M{rng.randint(10**8, 10**9 - 1)}",
                       f"{rng.randint(10**10, 10**11 - 1)}"])


def _ip(rng: random.Random) -> str:
    if rng.random() < 0.25:
        return f"2001:db8:{rng.randint(1, 0xffff):x}::{rng.randint(1, 0xffff):x}"
    return f"{rng.choice([10, 172, 192, 100, 81])}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"


def patients(n: int, seed: int = 0) -> list[Patient]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        first, last = rng.choice(GIVEN_NAMES).capitalize(), _surname(rng)
        domain = rng.choice(["example-health.org", "mail.example", "patients.example.net"])
        email = rng.choice([f"{first}.{last}", f"{first[0]}{last}", f"{last}{rng.randint(1, 99)}"]).lower()
        out.append(Patient(first, last, _mrn(rng), _ssn(rng), _dob(rng), _phone(rng), f"{email}@{domain}",
                           _address(rng), _insurance(rng), _member(rng), _ip(rng)))
    return out


# ---- text around an identifier --------------------------------------------------------------

_TEMPLATES: dict[str, tuple[str, ...]] = {
    "name": ("Patient {v} admitted to ward 4B", "lookup failed for patient {v}", "{v} was discharged at 14:02",
             "admitted {v} after triage", "chart for {v} did not load", "name: {v}", "Mr. {v} called back",
             "{v} called the front desk", "{{\"patient_name\" : \"{v}\"}}", "paged Dr. {v} about bed 12",
             "results for {v} delayed by the failover", "surname={last}, first={first}"),
    "mrn": ("MRN {v} not found", "lookup mrn={v} timed out", "{{\"mrn\" : \"{v}\"}}", "patient id: {v}",
            "medical record number {v} locked", "GET /patients/{v}/chart 500", "MRN#{v} merged"),
    "ssn": ("SSN {v} rejected by the payer", "{{\"ssn\":\"{v}\"}}", "social security number: {v}",
            "verifying {v} against the registry", "ssn={v}"),
    "dob": ("DOB {v}", "date of birth: {v} does not match", "born {v}", "{{\"dob\" : \"{v}\"}}",
            "birthdate={v}", "patient dob {v}, allergies none", "pt born on {v} in ED"),
    "phone": ("callback {v} unanswered", "phone: {v}", "call {v} for results", "{{\"phone\": \"{v}\"}}",
              "mobile {v} opted out", "sms to {v} failed"),
    "email": ("portal login for {v} failed", "{{\"email\" : \"{v}\"}}", "sent results to {v}", "user={v}"),
    "address": ("lives at {v}", "address: {v}", "{{\"address\" : \"{v}\"}}", "ambulance sent to {v}",
                "home address {v} on file"),
    "insurance": ("insurance id {v} denied", "policy #{v} expired", "{{\"insurance_id\": \"{v}\"}}",
                  "Medicare {v} eligible", "payer id: {v}", "coverage {v} pending"),
    "member": ("member id {v} not eligible", "{{\"member_id\" : \"{v}\"}}", "subscriber {v} inactive",
               "member #{v} verified"),
    "ip": ("request from {v} refused", "client {v} reset the connection", "{{\"client_ip\": \"{v}\"}}",
           "kiosk at {v} offline"),
}


def sentence(kind: str, value: str, rng: random.Random, patient: Patient | None = None) -> str:
    template = rng.choice(_TEMPLATES[kind])
    first, _, last = value.partition(" ") if kind == "name" else ("", "", "")
    return template.format(v=value, first=first, last=last)


def slug(value: str) -> str:
    """The value as a URL path segment or an id (``jane-brambleworth``, ``1984-03-12``)."""
    return re.sub(r"[^A-Za-z0-9@.+:-]+", "-", value).strip("-")


@dataclass
class Seed:
    """One identifier as placed: where, and what must never be found."""

    kind: str
    value: str
    path: str
    field: str
    needles: tuple[str, ...] = ()


def needles(kind: str, value: str, placed: str) -> tuple[str, ...]:
    out = {value, placed} if len(placed) <= 60 else {value}
    if kind == "name":
        out.add(value.split(" ", 1)[1])  # the surname alone
    digits = max(re.findall(r"\d+", value), key=len, default="")
    if len(digits) >= 6:
        out.add(digits)
    if kind == "ssn":
        out.add(re.sub(r"\D", "", value))
    return tuple(sorted(o for o in out if o))


# ---- the corpus as records ----------------------------------------------------------------------


@dataclass
class Corpus:
    seeds: list[Seed] = field(default_factory=list)
    #: (settings attribute of the topic, key, value)
    records: list[tuple[str, bytes | None, bytes]] = field(default_factory=list)
    #: HTTP requests: (content type, headers, body) for POST /v1/events
    http: list[tuple[dict, bytes]] = field(default_factory=list)
    #: JSON lines for ``hub emit --file`` (request-leg CloudEvents)
    emit_lines: list[bytes] = field(default_factory=list)
    #: HTTP experiment commands, in order: (path, headers, body) for POST (the actor in X-Hub-Actor)
    experiment_http: list[tuple[str, dict, bytes]] = field(default_factory=list)
    #: values that must be stored as they are (infrastructure names, ids, server addresses):
    #: (table, column, value)
    kept: list[tuple[str, str, str]] = field(default_factory=list)


class _Placer:
    """Hands out identifiers one at a time, round-robin over patients and kinds."""

    def __init__(self, people: list[Patient], rng: random.Random, corpus: Corpus):
        self.people, self.rng, self.corpus, self.i = people, rng, corpus, 0

    def next(self, path: str, fld: str, how: str = "text") -> str:
        p = self.people[self.i // len(KINDS) % len(self.people)]
        kind = KINDS[self.i % len(KINDS)]
        self.i += 1
        value = p.value(kind)
        if how == "text":
            placed = sentence(kind, value, self.rng, p)
        elif how == "slug":
            placed = slug(value)
        elif how == "path":
            placed = f"/patients/{slug(value)}/chart"
        else:  # raw
            placed = value
        self.corpus.seeds.append(Seed(kind, value, path, fld, needles(kind, value, placed if how != "text" else value)))
        return placed


def _iso(t: dt.datetime) -> str:
    return t.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _j(v) -> bytes:
    return json.dumps(v).encode()


def _request_leg(pl: _Placer, path: str, rng: random.Random, now: dt.datetime) -> dict:
    data = {
        "correlation_id": pl.next(path, "correlation_id", "slug"), "leg": "primary",
        "gateway": pl.next(path, "gateway", "slug"), "route": pl.next(path, "route", "path"), "method": "GET",
        "backend": pl.next(path, "backend", "slug"), "status": 500, "latency_ms": 3.5, "event_time": _iso(now),
        "response_hash": pl.next(path, "response_hash", "slug"), "error": pl.next(path, "error"),
        "experiment_id": pl.next(path, "experiment_id", "slug"), "phase": pl.next(path, "phase", "slug"),
    }
    return {"specversion": "1.0", "id": str(uuid.UUID(int=rng.getrandbits(128))),
            "source": "/edge" + pl.next(path, "source", "path"), "type": "dev.gamedayhub.request.leg.v1",
            "datacontenttype": "application/json", "data": data}


def _any(pl: _Placer, path: str, fld: str, depth: int) -> dict:
    """An OTLP AnyValue holding a seed: a string, or a kvlist/array nesting one ``depth`` deep."""
    if depth == 0:
        return {"stringValue": pl.next(path, fld)}
    if depth % 2:
        return {"kvlistValue": {"values": [{"key": "detail", "value": _any(pl, path, fld, depth - 1)},
                                           {"key": "patient", "value": {"stringValue": pl.next(path, fld, "raw")}}]}}
    return {"arrayValue": {"values": [_any(pl, path, fld, depth - 1), {"stringValue": pl.next(path, fld)}]}}


def _attrs(pl: _Placer, path: str, fld: str) -> list[dict]:
    return [
        {"key": "app.note", "value": {"stringValue": pl.next(path, fld)}},
        {"key": "app.lookup", "value": {"stringValue": pl.next(path, fld, "raw")}},
        {"key": "url.path", "value": {"stringValue": pl.next(path, fld, "path")}},
        {"key": "app.nested", "value": _any(pl, path, fld, 3)},
        {"key": "patient.mrn", "value": {"stringValue": pl.next(path, fld, "raw")}},
        {"key": "http.route", "value": {"stringValue": "/patients/{id}/chart"}},
    ]


def _resource(pl: _Placer, path: str) -> dict:
    return {"attributes": [{"key": "service.name", "value": {"stringValue": pl.next(path, "ServiceName", "slug")}},
                           {"key": "host.note", "value": {"stringValue": pl.next(path, "ResourceAttributes")}}]}


def _scope(pl: _Placer, path: str) -> dict:
    return {"name": pl.next(path, "ScopeName", "slug"), "version": pl.next(path, "ScopeVersion", "raw"),
            "attributes": [{"key": "scope.note", "value": {"stringValue": pl.next(path, "ScopeAttributes")}}]}


def _hex(rng: random.Random, n: int) -> str:
    return "%0*x" % (n * 2, rng.getrandbits(n * 8))


def _spans(pl: _Placer, path: str, rng: random.Random, now_ns: int) -> dict:
    trace = _hex(rng, 16)
    span = {
        "traceId": trace, "spanId": _hex(rng, 8), "traceState": "congo=" + pl.next(path, "TraceState", "slug"),
        "name": pl.next(path, "SpanName"), "kind": 2, "startTimeUnixNano": str(now_ns),
        "endTimeUnixNano": str(now_ns + 5_000_000), "attributes": _attrs(pl, path, "SpanAttributes"),
        "events": [{"timeUnixNano": str(now_ns + 1000), "name": pl.next(path, "Events.Name"),
                    "attributes": _attrs(pl, path, "Events.Attributes")}],
        "links": [{"traceId": _hex(rng, 16), "spanId": _hex(rng, 8),
                   "traceState": "rojo=" + pl.next(path, "Links.TraceState", "slug"),
                   "attributes": _attrs(pl, path, "Links.Attributes")}],
        "status": {"code": 2, "message": pl.next(path, "StatusMessage")},
    }
    return {"resourceSpans": [{"resource": _resource(pl, path), "schemaUrl": pl.next(path, "ResourceSchemaUrl", "path"),
                               "scopeSpans": [{"scope": _scope(pl, path), "spans": [span],
                                               "schemaUrl": "https://opentelemetry.io/schemas/" +
                                                            pl.next(path, "ScopeSchemaUrl", "slug")}]}]}


def _logs(pl: _Placer, path: str, rng: random.Random, now_ns: int) -> dict:
    records = [
        {"timeUnixNano": str(now_ns), "severityNumber": 17, "severityText": pl.next(path, "SeverityText", "slug"),
         "body": {"stringValue": pl.next(path, "Body")}, "attributes": _attrs(pl, path, "LogAttributes"),
         "eventName": pl.next(path, "EventName"), "traceId": _hex(rng, 16), "spanId": _hex(rng, 8)},
        {"timeUnixNano": str(now_ns + 1), "severityNumber": 9, "severityText": "INFO",
         "body": _any(pl, path, "Body", 4), "attributes": []},
    ]
    return {"resourceLogs": [{"resource": _resource(pl, path),
                              "schemaUrl": "https://opentelemetry.io/" + pl.next(path, "ResourceSchemaUrl", "slug"),
                              "scopeLogs": [{"scope": _scope(pl, path), "logRecords": records,
                                             "schemaUrl": pl.next(path, "ScopeSchemaUrl", "path")}]}]}


def _metrics(pl: _Placer, path: str, rng: random.Random, now_ns: int) -> dict:
    def point(kind):
        p: dict[str, Any] = {"attributes": _attrs(pl, path, "Attributes"), "timeUnixNano": str(now_ns),
             "startTimeUnixNano": str(now_ns - 10**9)}
        ex = [{"timeUnixNano": str(now_ns), "asDouble": 1.0, "traceId": _hex(rng, 16), "spanId": _hex(rng, 8),
               "filteredAttributes": _attrs(pl, path, "Exemplars.FilteredAttributes")}]
        if kind == "histogram":
            p.update(count="2", sum=3.0, bucketCounts=["1", "1"], explicitBounds=[1.0], exemplars=ex)
        else:
            p.update(asDouble=1.5, exemplars=ex)
        return p

    def metric(kind):
        m: dict[str, Any] = {"name": pl.next(path, "MetricName", "slug"),
                             "description": pl.next(path, "MetricDescription"),
                             "unit": pl.next(path, "MetricUnit", "raw")}
        if kind == "gauge":
            m["gauge"] = {"dataPoints": [point(kind)]}
        elif kind == "sum":
            m["sum"] = {"dataPoints": [point(kind)], "aggregationTemporality": 2, "isMonotonic": True}
        else:
            m["histogram"] = {"dataPoints": [point(kind)], "aggregationTemporality": 2}
        return m

    return {"resourceMetrics": [{"resource": _resource(pl, path), "schemaUrl": pl.next(path, "ResourceSchemaUrl", "path"),
                                 "scopeMetrics": [{"scope": _scope(pl, path),
                                                   "metrics": [metric("gauge"), metric("sum"), metric("histogram")]}]}]}


def _to_proto(doc: dict, signal: str) -> bytes:
    """The OTLP JSON document as protobuf (ids from hex to bytes, as the protobuf JSON mapping wants)."""
    from google.protobuf.json_format import ParseDict

    from google.protobuf.message import Message

    Req: type[Message]
    if signal == "spans":
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
        Req = ExportTraceServiceRequest
    elif signal == "logs":
        from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
        Req = ExportLogsServiceRequest
    else:
        from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
        Req = ExportMetricsServiceRequest

    def fix(v):
        if isinstance(v, dict):
            return {k: (base64.b64encode(bytes.fromhex(x)).decode() if k in ("traceId", "spanId") and isinstance(x, str)
                        else fix(x)) for k, x in v.items()}
        if isinstance(v, list):
            return [fix(x) for x in v]
        return v

    return ParseDict(fix(doc), Req()).SerializeToString()


def _experiment_events(pl: _Placer, path: str, rng: random.Random, now: dt.datetime, experiment_id: str):
    """Experiment events with seeds in notes, surprises, expected/actual, fault parameters, reasons,
    summaries and the actor (as the CLI and the HTTP API write them)."""
    from hub.experiments.events import (Event, ExperimentAborted, ExperimentCompleted, FaultInjected, NoteAdded,
                                        encode_event)

    seq = iter(range(100, 10_000))

    def common(offset):
        return {"experiment_id": experiment_id, "event_id": str(uuid.UUID(int=rng.getrandbits(128))),
                "actor": pl.next(path, "actor", "raw"), "time": now + dt.timedelta(seconds=offset),
                "sequence": next(seq)}

    events: list[Event] = [
        NoteAdded(note_id="n1", note_kind="observation", text=pl.next(path, "payload.text"),
                  expected=pl.next(path, "payload.expected"), actual=pl.next(path, "payload.actual"),
                  tags=[pl.next(path, "payload.tags", "slug")], **common(1)),
        NoteAdded(note_id="n2", note_kind="surprise", text=pl.next(path, "payload.text"), **common(2)),
        FaultInjected(fault_id="f1", action="add-latency", target=pl.next(path, "payload.target", "slug"),
                      parameters={"note": pl.next(path, "payload.parameters"),
                                  "patient": pl.next(path, "payload.parameters", "raw"),
                                  "query": pl.next(path, "payload.parameters")},
                      injector=pl.next(path, "payload.injector", "slug"), **common(3)),
        ExperimentAborted(reason=pl.next(path, "payload.reason"), by=pl.next(path, "payload.by", "raw"), **common(4)),
        ExperimentCompleted(summary=pl.next(path, "payload.summary"), **common(5)),
    ]
    return [encode_event(e) for e in events]


_DEFINITION = """
id: {id}
title: {title}
scenario: {scenario}
hypothesis: {hypothesis}
expected_outcome: Nothing reaches the store.
steady_state:
  - {{name: errors, sli: error_rate, source: requests, tolerance: {{max: 0.2}}}}
environment: {{name: staging, kind: non-live, risk: low}}
targets: {{gateways: [edge-corpus]}}
phases: [{{name: baseline, planned_minutes: 1}}]
"""


def _experiment_http(pl: _Placer, path: str, experiment_id: str) -> list[tuple[str, dict, bytes]]:
    """The HTTP API's commands, as a gameday team types them: actor header, notes, faults, abort."""
    def actor() -> dict:
        return {"X-Hub-Actor": pl.next(path, "X-Hub-Actor", "raw"), "Content-Type": "application/json"}

    def yaml_text(field: str) -> str:
        return json.dumps(pl.next(path, field))  # a JSON string is a YAML string, quotes and all

    definition = _DEFINITION.format(id=experiment_id, title=yaml_text("definition.title"),
                                    scenario=yaml_text("definition.scenario"),
                                    hypothesis=yaml_text("definition.hypothesis"))
    base = f"/v1/experiments/{experiment_id}"
    return [
        ("/v1/experiments", {**actor(), "Content-Type": "application/yaml"}, definition.encode()),
        (base + "/prerequisites", actor(), _j({"all_done": True, "note": pl.next(path, "prerequisites.note")})),
        (base + "/start", actor(), _j({"force": True})),
        (base + "/faults", actor(), _j({"action": "add-latency", "target": pl.next(path, "fault.target", "slug"),
                                        "parameters": {"note": pl.next(path, "fault.parameters"),
                                                       "who": pl.next(path, "fault.parameters", "raw")},
                                        "injector": pl.next(path, "fault.injector", "slug")})),
        (base + "/notes", actor(), _j({"text": pl.next(path, "note.text"), "kind": "surprise",
                                       "expected": pl.next(path, "note.expected"),
                                       "actual": pl.next(path, "note.actual"),
                                       "tags": [pl.next(path, "note.tags", "slug")]})),
        (base + "/notes", actor(), _j({"text": pl.next(path, "note.text")})),
        (base + "/abort", actor(), _j({"reason": pl.next(path, "abort.reason")})),
    ]


# ---- cases found by testing the redaction from outside: leaks, and values that must be kept --------

#: (field, text, needles): patient data in shapes the detectors once missed.
FOUND_LEAKS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("error", "connection reset by client 10.78.64.23.", ("10.78.64.23",)),
    ("error", "born 3rd of March 1962 per the registry", ("3rd of March 1962",)),
    ("error", "call 617.555.0613 or 6175550614 or 555-0615", ("555-0615", "6175550614")),
    ("error", "MRN#00441616 chart 00441617 record no. 00441618", ("00441616", "00441617", "00441618")),
    ("error", "ambulance sent; lives on Larkspur Lane near the park", ("Larkspur",)),
    ("error", "ordered by dr Dunbranington", ("Dunbranington",)),
    ("error", "mr brackwater called back", ("brackwater",)),
    ("error", "Patient: zebulon quelkessworth", ("quelkessworth",)),
    ("error", 'upstream said {"note": "{\\"name \\": \\"Zebulon Quelmorworth\\", \\"mrn\\": \\"00441619\\"}"}',
     ("Quelmorworth", "00441619")),
    ("error", '{ "patient" :  { "first_name":"Zebulon" ,"last_name" : "Quelvexworth", "mrn" :"00441620"}}',
     ("Quelvexworth", "00441620")),
    ("route", "/patients/ralquelington/chart", ("ralquelington",)),
    ("route", "/patients/Zebulon-Fenquelington/dob/1962-03-14", ("Fenquelington", "1962-03-14")),
    ("route", "/patients/Zebulon%20Queldunworth/chart", ("Queldunworth",)),
    ("backend", "db-1995-02-15", ("1995-02-15",)),
    ("experiment_id", "zebulon-quillfeather-1962-03-14", ("1962-03-14", "quillfeather")),
    ("experiment_id", "patient-dundunworth", ("dundunworth",)),
    ("error", "seen by Ottoline Marsh in bed 4", ("Ottoline", "Marsh")),
    ("error", "Ottoline Marsh in bed 4", ("Ottoline", "Marsh")),
    ("error", "lookup failed: DOB-03-14-1962", ("03-14-1962",)),
    ("error", "lives at 42 Wallaby Way, Sydney", ("Wallaby", "Sydney")),
    ("backend", "DOB-03-14-1962", ("03-14-1962",)),
    ("gateway", "edge-gw-DOB-03-14-1962", ("03-14-1962",)),
    ("correlation_id", "edge-gw-DOB-03-14-1962", ("03-14-1962",)),
    ("gateway", "edge-gw-1600-Larkspur-Lane-Apt-3", ("Larkspur",)),
)
#: (column, value): infrastructure names, ids and addresses the redaction once replaced.
FOUND_KEPT: tuple[tuple[str, str], ...] = (
    ("gateway", "grace-scheduler"), ("gateway", "mark-sweep-gw"), ("gateway", "jack-gateway"),
    ("gateway", "victoria-gw"), ("gateway", "Dr-Strange-gw"), ("backend", "rose-db"), ("backend", "april-batch"),
    ("backend", "db-shard-12345678"), ("backend", "payments-v2.3.1.0"), ("backend", "127.82.156.156:32923"),
    ("correlation_id", "corr-123456789abc"), ("correlation_id", "1733590000123"),
    ("correlation_id", "order-20241207-0001234"),
    ("gateway", "edge-gw-2"), ("gateway", "db-shard-12345678"), ("backend", "patients-db-replica-b"),
    ("gateway", "release-2024-03-14"),
)


def _found_cases(corpus: Corpus, rng: random.Random, now: dt.datetime) -> None:
    """The cases of ``FOUND_LEAKS`` and ``FOUND_KEPT`` as request legs, a shadow pair and dead letters."""
    def leg(**data) -> bytes:
        base = {"correlation_id": "c-found", "leg": "primary", "gateway": "edge-found", "route": "/found",
                "method": "GET", "backend": "found-svc", "status": 500, "latency_ms": 1.0, "event_time": _iso(now)}
        return _j({"specversion": "1.0", "id": str(uuid.UUID(int=rng.getrandbits(128))), "source": "/found",
                   "type": "dev.gamedayhub.request.leg.v1", "datacontenttype": "application/json",
                   "data": {**base, **data}})

    for fld, text, found in FOUND_LEAKS:
        corpus.records.append(("topic_requests", None, leg(**{fld: text})))
        corpus.seeds.append(Seed("found", text, "found/requests", fld, found))
    for fld, value in FOUND_KEPT:
        corpus.records.append(("topic_requests", None, leg(**{fld: value})))
        corpus.kept.append(("requests", fld, value))
    pair = {"correlation_id": "c-found-pair", "gateway": "edge-found", "route": "/found", "method": "GET",
            "primary_backend": "a", "shadow_backend": "b", "outcome": "body_mismatch", "event_time": _iso(now),
            "primary_status": 200, "shadow_status": 200, "differing_fields": ["$.status"],
            "noise_fields": ["$.dob.1986-01-03"]}
    corpus.records.append(("topic_pairs", None, _j({
        "specversion": "1.0", "id": str(uuid.UUID(int=rng.getrandbits(128))), "source": "/found",
        "type": "dev.gamedayhub.shadow.pair.v1", "datacontenttype": "application/json", "data": pair})))
    corpus.seeds.append(Seed("found", "$.dob.1986-01-03", "found/pairs", "noise_fields", ("1986-01-03",)))
    # dead letters: a refused enum value (an unlisted given name), a PHI-named OTLP attribute in a cut record
    corpus.records.append(("topic_requests", None, leg(leg="Barnaby Haskkessberg")))
    corpus.seeds.append(Seed("found", "Barnaby Haskkessberg", "found/dead_letters", "value (leg)", ("Haskkessberg",)))
    cut = (b'{ "resourceSpans" : [ {"resource": {"attributes": [{"key":"patient", "value": '
           b'{"stringValue": "Ottoline Lornkessberg"}}]}}], "x": 1\xff\xfe')
    corpus.records.append(("topic_spans", None, cut))
    corpus.seeds.append(Seed("found", "Ottoline Lornkessberg", "found/dead_letters", "value (attribute)",
                             ("Lornkessberg",)))


def build_corpus(n_patients: int = 150, seed: int = 0, now: dt.datetime | None = None,
                 rounds: int = 2) -> Corpus:
    """Every ingest path, every field, ``rounds`` records of each; seeds drawn round-robin from
    ``n_patients`` patients."""
    rng = random.Random(seed)
    now = now or dt.datetime.now(UTC)
    now_ns = int(now.timestamp() * 1e9)
    corpus = Corpus()
    pl = _Placer(patients(n_patients, seed), rng, corpus)
    exp_id = f"exp-corpus-{seed}-{rng.randrange(10**6)}"
    for _ in range(rounds):
        # request legs: Kafka (structured) and HTTP (structured, batch, binary)
        corpus.records.append(("topic_requests", None, _j(_request_leg(pl, "requests/kafka", rng, now))))
        corpus.http.append(({"Content-Type": "application/cloudevents+json"},
                            _j(_request_leg(pl, "requests/http-structured", rng, now))))
        corpus.http.append(({"Content-Type": "application/cloudevents-batch+json"},
                            _j([_request_leg(pl, "requests/http-batch", rng, now) for _ in range(2)])))
        ev = _request_leg(pl, "requests/http-binary", rng, now)
        headers = {f"ce-{k}": v for k, v in ev.items() if k not in ("data", "datacontenttype")}
        headers["Content-Type"] = "application/json"
        corpus.http.append((headers, _j(ev["data"])))
        corpus.emit_lines.append(_j(_request_leg(pl, "requests/hub-emit", rng, now)))
        # OTLP, JSON and protobuf
        for signal, make, topic in (("spans", _spans, "topic_spans"), ("logs", _logs, "topic_logs"),
                                    ("metrics", _metrics, "topic_metrics")):
            corpus.records.append((topic, None, _j(make(pl, f"otlp/{signal}/json", rng, now_ns))))
            corpus.records.append((topic, None, _to_proto(make(pl, f"otlp/{signal}/proto", rng, now_ns), signal)))
        # alerts
        alert = {"kind": "alert", "time": _iso(now), "experiment_id": pl.next("alerts", "experiment_id", "slug"),
                 "alert_id": pl.next("alerts", "alert_id", "slug"), "status": pl.next("alerts", "status", "slug"),
                 "rule": pl.next("alerts", "rule"), "severity": pl.next("alerts", "severity", "slug"),
                 "measurement": pl.next("alerts", "measurement", "slug"),
                 "comparison": pl.next("alerts", "comparison", "slug"), "threshold": 0.2, "observed": 0.5,
                 "samples": 10, "top_contributors": [{"route": pl.next("alerts", "top_contributors", "path"),
                                                      "note": pl.next("alerts", "top_contributors")}],
                 "example_request_ids": [pl.next("alerts", "example_request_ids", "slug")],
                 "message": pl.next("alerts", "message"), "action": pl.next("alerts", "action", "slug"),
                 "url": "https://hooks.example" + pl.next("alerts", "url", "path") + "?q=" + slug(pl.next("alerts", "url", "raw")),
                 "error": pl.next("alerts", "error")}
        corpus.records.append(("topic_alerts", None, _j(alert)))
        # shadow pairs
        pair = {"correlation_id": pl.next("pairs", "correlation_id", "slug"), "gateway": pl.next("pairs", "gateway", "slug"),
                "route": pl.next("pairs", "route", "path"), "method": "GET",
                "primary_backend": pl.next("pairs", "primary_backend", "slug"),
                "shadow_backend": pl.next("pairs", "shadow_backend", "slug"),
                "secondary_backend": pl.next("pairs", "secondary_backend", "slug"), "outcome": "body_mismatch",
                "event_time": _iso(now), "primary_status": 200, "shadow_status": 200,
                "differing_fields": [pl.next("pairs", "differing_fields", "slug")],
                "noise_fields": [pl.next("pairs", "noise_fields", "slug")],
                "shadow_error": pl.next("pairs", "shadow_error"),
                "experiment_id": pl.next("pairs", "experiment_id", "slug"), "phase": pl.next("pairs", "phase", "slug")}
        corpus.records.append(("topic_pairs", None, _j({
            "specversion": "1.0", "id": str(uuid.UUID(int=rng.getrandbits(128))), "source": "/edge" + pl.next("pairs", "source", "path"),
            "type": "dev.gamedayhub.shadow.pair.v1", "datacontenttype": "application/json", "data": pair})))
        # experiment events: on the topic as the CLI writes them, and through the HTTP API
        for value in _experiment_events(pl, "experiments", rng, now, exp_id):
            corpus.records.append(("topic_experiments", exp_id.encode(), value))
        corpus.experiment_http.extend(_experiment_http(pl, "experiments/http", f"{exp_id}-http-{len(corpus.experiment_http)}"))
        # dead letters: refused by the decoders, each carrying seeds in the key, the reason and the payload
        bad_leg = _request_leg(pl, "dead_letters", rng, now)
        bad_leg["data"]["leg"] = pl.next("dead_letters", "reason (enum value)", "raw")
        corpus.records.append(("topic_requests", pl.next("dead_letters", "key", "raw").encode(), _j(bad_leg)))
        corpus.records.append(("topic_spans", pl.next("dead_letters", "key", "slug").encode(),
                               ("not json: " + pl.next("dead_letters", "value")).encode()))
        corpus.records.append(("topic_alerts", None, _j({"kind": pl.next("dead_letters", "reason (enum value)", "raw"),
                                                         "time": _iso(now), "experiment_id": "x",
                                                         "message": pl.next("dead_letters", "value")})))
        corpus.records.append(("topic_pairs", None, _j({"specversion": "1.0", "id": "p", "source": "/s",
                                                        "type": "dev.gamedayhub.shadow.pair.v1",
                                                        "data": {"outcome": pl.next("dead_letters", "reason (enum value)", "raw"),
                                                                 "shadow_error": pl.next("dead_letters", "value")}})))
    _found_cases(corpus, rng, now)
    return corpus


def values(kind: str, rng: random.Random) -> str:
    """One identifier of ``kind`` in a random format (for property tests and the recall bench)."""
    return patients(1, rng.randrange(2**32))[0].value(kind)


def labelled_texts(n_patients: int = 150, seed: int = 0) -> Iterator[tuple[str, str, str]]:
    """``(kind, value, text)``: every identifier of every patient inside one of its sentences."""
    rng = random.Random(seed)
    for p in patients(n_patients, seed):
        for kind in KINDS:
            value = p.value(kind)
            yield kind, value, sentence(kind, value, rng, p)


Finder = Callable[[str], list[tuple[int, int]]]
