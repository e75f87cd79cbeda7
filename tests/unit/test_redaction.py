"""The redaction policy: every default rule on realistic values, query strings, headers, allowlists,
identity of untouched rows, counters without values, and properties of masking."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import datetime, timezone
from types import SimpleNamespace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hub.errors import ConfigError
from hub.otel.decode import GAUGE_COLUMNS, LOG_COLUMNS, TRACE_COLUMNS
from hub.records.decode import DecodedBatch
from hub.records.request_leg import REQUEST_COLUMNS
from hub.redaction import (
    MaskPattern,
    RedactionPolicy,
    RedactionStats,
    Redactor,
    default_policy,
    load_policy,
    policy_from_mapping,
    redact_attributes,
    redact_dead_letter_value,
    redact_log_rows,
    redact_metric_rows,
    redact_request_rows,
    redact_span_rows,
    redact_text,
    redact_url,
)
from hub.redaction.policy import DEFAULT_MASK_PATTERNS
from hub.settings import REPO_ROOT

P = default_policy()


def masked(text: str) -> str:
    return redact_text(P, text)


# ---- mask patterns on realistic values ---------------------------------------------------------


@pytest.mark.parametrize("text, expected", [
    ("SSN 078-05-1120 on file", "SSN [REDACTED:ssn] on file"),
    ("ssn=078 05 1120", "ssn=[REDACTED:ssn]"),
    ("social security number: 078051120", "social security number: [REDACTED:ssn]"),
    ("contact z.farquharson+er@example-health.org now", "contact [REDACTED:email] now"),
    ("MRN 004417829 not found", "MRN [REDACTED:mrn] not found"),
    ("mrn#00123456", "mrn#[REDACTED:mrn]"),
    ("Medical Record Number: HX0099812", "Medical Record Number: [REDACTED:mrn]"),
    ("patient_id=1234567 timed out", "patient_id=[REDACTED:mrn] timed out"),
    ("call (617) 555-0142", "call [REDACTED:phone]"),
    ("call 617-555-0142 or +1 617.555.0199", "call [REDACTED:phone] or [REDACTED:phone]"),
    ("intl +44 20 7946 0958", "intl [REDACTED:phone]"),
    ("DOB 03/14/1962", "DOB [REDACTED:dob]"),
    ("date of birth: 1962-03-14", "date of birth: [REDACTED:dob]"),
    ("born on March 14, 1962", "born on [REDACTED:dob]"),
    ("admitted 14.03.1962 per chart", "admitted [REDACTED:dob] per chart"),
    ("seen 3/14/1962", "seen [REDACTED:dob]"),
    ("Patient Zebulon Farquharson admitted", "Patient [REDACTED:name] admitted"),
    ("name: Philippa Wexcombe", "name: [REDACTED:name]"),
    ('{"patient":"Zebulon Farquharson","ward":"3B"}', '{"patient":"[REDACTED:phi_key]","ward":"3B"}'),
    ("paged Dr. Gregory House", "paged Dr. [REDACTED:name]"),
    ("Mrs. Wexcombe called", "Mrs. [REDACTED:name] called"),
    ("patient Mr. Zebulon Farquharson", "patient [REDACTED:name]"),
])
def test_default_patterns_mask(text, expected):
    assert masked(text) == expected


@pytest.mark.parametrize("text", [
    "connection refused",
    "upstream timeout after 3 retries",
    "2024-05-01T10:00:00.123Z GET took 1234 ms",   # ISO timestamps are not dates of birth
    "pool resized to 8",
    "MS Teams outage",                              # cue words are case-sensitive for titles
    "Drive failed on node-7",
    "patient-portal v1.2.3",
    "trace 4bf92f3577b34da6a3ce929d0e0e4736",
    "renamed Foo to Bar",
])
def test_operational_text_is_left_alone(text):
    assert masked(text) is text or masked(text) == text


def test_query_strings_and_paths_in_free_text():
    assert masked("GET /patients/004417829/chart?name=Zebulon&ssn=x failed") == "GET /patients/{id}/chart failed"
    assert masked('fetch "https://portal/p?mrn=1" refused') == 'fetch "https://portal/p" refused'
    assert masked("is it down?") == "is it down?"


def test_a_cue_inside_a_query_string_still_masks_its_value_after_it():
    # The cue "MRN" ends the query string, its number follows after a space: dropping the query
    # first would leave the number without the cue that marks it (found by the property test).
    text = "000-00-0000?000-00-0000MRN=000000MRN 000000"
    assert masked(text).startswith("[REDACTED:ssn]") and "000000" not in masked(text)
    assert masked("see /p?id=7MRN 004417829 now") == "see /p [REDACTED:mrn] now"


# ---- URLs, query strings, path identifiers -----------------------------------------------------


@pytest.mark.parametrize("url, expected", [
    ("https://portal.example.org/patients/004417829/chart?name=Zebulon+Farquharson#top",
     "https://portal.example.org/patients/{id}/chart"),
    ("https://alice:s3cret@portal.example.org/a", "https://portal.example.org/a"),
    ("/patients/550e8400-e29b-41d4-a716-446655440000/records", "/patients/{id}/records"),
    ("/patients/5f1d7c2e9a8b4c3d2e1f0a9b/records", "/patients/{id}/records"),
    ("/users/jane.doe%40example.org/prefs", "/users/{id}/prefs"),
    ("/patients/MRN004417829", "/patients/{id}"),
    ("/patients/{id}/records", "/patients/{id}/records"),
    ("/v1/orders/42", "/v1/orders/42"),  # short numbers are not identifiers
    ("/search", "/search"),
])
def test_urls(url, expected):
    assert redact_url(P, url) == expected


def test_query_strings_kept_when_disabled():
    keep = RedactionPolicy(drop_query_strings=False)
    assert redact_url(keep, "/search?q=orders") == "/search?q=orders"
    assert redact_attributes(keep, {"url.query": "q=orders"}) == {"url.query": "q=orders"}
    # masking still applies inside the query
    assert redact_url(keep, "/search?email=a.b@example.org") == "/search?email=[REDACTED:email]"


# ---- attribute maps ------------------------------------------------------------------------------


def test_attribute_maps():
    stats = RedactionStats()
    attrs = {
        "http.request.method": "GET",
        "http.response.status_code": "500",
        "url.full": "https://portal/patients/004417829?ssn=078-05-1120",
        "url.path": "/patients/004417829",
        "url.query": "ssn=078-05-1120",
        "http.request.header.authorization": '["Bearer abc"]',
        "http.request.header.x-patient-name": '["Zebulon Farquharson"]',
        "http.request.header.content-type": '["application/json"]',
        "http.response.header.set-cookie": '["sid=1"]',
        "http.response.header.content-length": '["12"]',
        "enduser.id": "z.farq@example-health.org",
        "user.email": "z.farq@example-health.org",
        "client.address": "203.0.113.7",
        "db.statement": "SELECT * FROM patients WHERE ssn = '078-05-1120'",
        "server.address": "portal.internal",
        "note": "Mr. Farquharson called from 617-555-0142",
    }
    out = redact_attributes(P, attrs, "spans", stats=stats)
    assert out == {
        "http.request.method": "GET",
        "http.response.status_code": "500",
        "url.full": "https://portal/patients/{id}",
        "url.path": "/patients/{id}",
        "http.request.header.content-type": '["application/json"]',
        "http.response.header.content-length": '["12"]',
        "server.address": "portal.internal",
        "note": "Mr. [REDACTED:name] called from [REDACTED:phone]",
    }
    counts = stats.snapshot()
    assert counts[("spans", "drop:http.request.header.*")] == 2
    assert counts[("spans", "drop:http.response.header.*")] == 1
    assert counts[("spans", "query_string")] == 2  # url.full's query and url.query
    assert counts[("spans", "path_id")] == 2
    assert counts[("spans", "mask:name")] == 1 and counts[("spans", "mask:phone")] == 1
    assert attrs["url.query"] == "ssn=078-05-1120"  # the input map is not modified


def test_unchanged_map_is_the_same_object():
    attrs = {"http.request.method": "GET", "server.address": "portal.internal"}
    assert redact_attributes(P, attrs) is attrs


def test_allowlists_per_signal_and_service():
    policy = policy_from_mapping({"allowlists": {
        "spans": ["http.request.method", "http.response.*"],
        "billing": ["invoice.kind"],
    }})
    attrs = {"http.request.method": "GET", "http.response.status_code": "200", "custom.thing": "x",
             "invoice.kind": "monthly", "service.name": "checkout", "experiment.id": "exp-1"}
    stats = RedactionStats()
    assert redact_attributes(policy, attrs, "spans", stats=stats) == {
        "http.request.method": "GET", "http.response.status_code": "200",
        "service.name": "checkout", "experiment.id": "exp-1"}
    assert stats.snapshot() == {("spans", "allowlist"): 2}
    # the service's list wins over the signal's
    assert redact_attributes(policy, attrs, "spans", service="billing") == {
        "invoice.kind": "monthly", "service.name": "checkout", "experiment.id": "exp-1"}
    # no list for logs: only the drop rules apply
    assert redact_attributes(policy, attrs, "logs") == attrs
    # allowlisted keys are still masked
    assert redact_attributes(policy, {"http.response.body": "MRN 004417829"}, "spans") == {
        "http.response.body": "MRN [REDACTED:mrn]"}


def test_allowlist_for_service_applies_to_rows():
    policy = policy_from_mapping({"allowlists": {"billing": ["invoice.kind"]}})
    row = span_row(service="billing", attrs={"invoice.kind": "monthly", "other": "x"})
    other = span_row(service="checkout", attrs={"invoice.kind": "monthly", "other": "x"})
    out = redact_span_rows(policy, [row, other])
    assert out[0][TRACE_COLUMNS.index("SpanAttributes")] == {"invoice.kind": "monthly"}
    assert out[1] is other


# ---- rows ----------------------------------------------------------------------------------------


def request_row(route="/patients/{id}", error="", source="/gateways/edge-1"):
    values = {
        "event_id": uuid.uuid4(), "event_time": datetime(2026, 1, 1, tzinfo=timezone.utc), "experiment_id": "exp-1",
        "phase": "injection", "correlation_id": "c-1", "leg": "primary", "gateway": "edge-1", "route": route,
        "method": "GET", "backend": "records", "status": 500, "latency_ms": 12.5, "request_bytes": 1,
        "response_bytes": 2, "response_hash": "", "error": error, "source": source,
    }
    return tuple(values[c] for c in REQUEST_COLUMNS)


RES = {"service.name": "checkout", "deployment.environment": "gameday"}


def span_row(service="checkout", attrs=None, name="GET /patients/{id}", status="", events=(), links=()):
    values = {
        "Timestamp": 1, "TraceId": "ab" * 16, "SpanId": "cd" * 8, "ParentSpanId": "", "TraceState": "",
        "SpanName": name, "SpanKind": "Server", "ServiceName": service, "ResourceAttributes": RES,
        "ScopeName": "s", "ScopeVersion": "1", "SpanAttributes": attrs or {}, "Duration": 5,
        "StatusCode": "Error" if status else "Unset", "StatusMessage": status,
        "Events.Timestamp": [2] * len(events), "Events.Name": [e[0] for e in events],
        "Events.Attributes": [e[1] for e in events],
        "Links.TraceId": ["ef" * 16] * len(links), "Links.SpanId": ["01" * 8] * len(links),
        "Links.TraceState": [""] * len(links), "Links.Attributes": list(links),
        "ExperimentId": "exp-1", "ExperimentPhase": "",
    }
    return tuple(values[c] for c in TRACE_COLUMNS)


def test_request_rows():
    clean = request_row()
    dirty = request_row(route="/patients/004417829/chart", error="lookup failed for MRN 004417829",
                        source="/gateways/edge-1?patient=Zebulon")
    rows = [clean, dirty]
    stats = RedactionStats()
    out = redact_request_rows(P, rows, stats)
    assert out[0] is clean
    d = dict(zip(REQUEST_COLUMNS, out[1]))
    assert d["route"] == "/patients/{id}/chart"
    assert d["error"] == "lookup failed for MRN [REDACTED:mrn]"
    assert d["source"] == "/gateways/edge-1"
    assert d["correlation_id"] == "c-1" and d["status"] == 500 and d["latency_ms"] == 12.5
    assert {k: n for k, n in stats.snapshot().items() if k[1] != "mask:long_id"} == {
        ("requests", "path_id"): 1, ("requests", "mask:mrn"): 1,
                                ("requests", "query_string"): 1}


def test_nothing_changed_keeps_identity():
    rows = [request_row() for _ in range(5)]
    assert redact_request_rows(P, rows) is rows
    spans = [span_row(attrs={"http.request.method": "GET"}, events=[("retry", {"attempt": "2"})]) for _ in range(3)]
    assert redact_span_rows(P, spans) is spans


def test_span_rows_every_text_and_map():
    row = span_row(
        attrs={"url.full": "https://p/patients/004417829?x=1", "http.request.method": "GET"},
        name="GET /patients/004417829",
        status="no chart for patient Zebulon Farquharson",
        events=[("exception", {"exception.message": "z.farq@example-health.org not found"}),
                ("retry", {"attempt": "2"})],
        links=[{"caller": "MRN 004417829"}],
    )
    out = dict(zip(TRACE_COLUMNS, redact_span_rows(P, [row])[0]))
    assert out["SpanName"] == "GET /patients/{id}"
    assert out["StatusMessage"] == "no chart for patient [REDACTED:name]"
    assert out["SpanAttributes"] == {"url.full": "https://p/patients/{id}", "http.request.method": "GET"}
    assert out["Events.Attributes"][0] == {"exception.message": "[REDACTED:email] not found"}
    assert out["Events.Attributes"][1] is row[TRACE_COLUMNS.index("Events.Attributes")][1]
    assert out["Links.Attributes"] == [{"caller": "MRN [REDACTED:mrn]"}]
    assert out["ResourceAttributes"] is RES


def test_shared_resource_map_redacted_once_but_counted_per_row():
    res = {"service.name": "checkout", "user.id": "z.farq"}
    rows = [span_row()[:8] + (res,) + span_row()[9:] for _ in range(4)]
    stats = RedactionStats()
    out = redact_span_rows(P, rows, stats)
    maps = {id(r[TRACE_COLUMNS.index("ResourceAttributes")]) for r in out}
    assert len(maps) == 1 and out[0][TRACE_COLUMNS.index("ResourceAttributes")] == {"service.name": "checkout"}
    assert stats.snapshot() == {("spans", "drop:user.*"): 4}


def test_log_and_metric_rows():
    values = dict.fromkeys(LOG_COLUMNS, "")
    values.update({"Timestamp": 1, "TraceFlags": 0, "SeverityNumber": 9, "ResourceAttributes": RES,
                   "ScopeAttributes": {}, "LogAttributes": {"user.name": "Zebulon"},
                   "Body": "Patient Zebulon Farquharson DOB 03/14/1962 admitted", "EventName": ""})
    row = tuple(values[c] for c in LOG_COLUMNS)
    out = dict(zip(LOG_COLUMNS, redact_log_rows(P, [row])[0]))
    assert out["Body"] == "Patient [REDACTED:name] DOB [REDACTED:dob] admitted"
    assert out["LogAttributes"] == {}

    m = dict.fromkeys(GAUGE_COLUMNS, "")
    m.update({"ResourceAttributes": RES, "ScopeAttributes": {}, "Attributes": {"route": "/patients/004417829"},
              "Exemplars.FilteredAttributes": [{"enduser.id": "x"}], "Value": 1.0})
    mrow = tuple(m[c] for c in GAUGE_COLUMNS)
    mout = dict(zip(GAUGE_COLUMNS, redact_metric_rows(P, "otel_metrics_gauge", GAUGE_COLUMNS, [mrow])[0]))
    assert mout["Attributes"] == {"route": "/patients/{id}"}
    assert mout["Exemplars.FilteredAttributes"] == [{}]


def test_redactor_chains_like_the_correlator():
    redactor = Redactor()
    batch = DecodedBatch([request_row(error="SSN 078-05-1120")], [])
    assert redactor.requests(batch) is batch
    assert "[REDACTED:ssn]" in batch.rows[0][REQUEST_COLUMNS.index("error")]
    spans = redactor.spans(DecodedBatch([span_row(status="MRN 004417829")], []))
    assert "004417829" not in str(spans.rows)
    m = dict.fromkeys(GAUGE_COLUMNS, "")
    m.update({"ResourceAttributes": {}, "ScopeAttributes": {}, "Attributes": {"user.id": "1"},
              "Exemplars.FilteredAttributes": []})
    metrics = redactor.metrics(SimpleNamespace(tables=[("otel_metrics_gauge", GAUGE_COLUMNS,
                                                         [tuple(m[c] for c in GAUGE_COLUMNS)])]))
    assert metrics.tables[0][2][0][GAUGE_COLUMNS.index("Attributes")] == {}
    counts = redactor.stats.snapshot()
    assert counts[("requests", "mask:ssn")] == 1 and counts[("metrics", "drop:user.*")] == 1


def test_dead_letter_values():
    raw = b'{"data": {"route": "/p", "error": "MRN 004417829"}, "type": "x"}'
    out = redact_dead_letter_value(P, raw)
    assert b"004417829" not in out and b"[REDACTED:mrn]" in out
    binary = b"\x0a\x80\xffSSN 078-05-1120\x00"
    out = redact_dead_letter_value(P, binary)
    assert out.startswith(b"\x0a\x80\xff") and b"078-05-1120" not in out
    assert redact_dead_letter_value(P, b"nothing here") == b"nothing here"
    assert redact_dead_letter_value(P, None) is None


# ---- counters ------------------------------------------------------------------------------------


SEEDS = ["078-05-1120", "004417829", "z.farq@example-health.org", "Zebulon", "Farquharson", "555-0142"]


def test_counters_count_and_never_hold_values():
    stats = RedactionStats()
    text = "Patient Zebulon Farquharson SSN 078-05-1120 MRN 004417829 z.farq@example-health.org 617-555-0142"
    redact_text(P, text, stats, source="logs")
    redact_text(P, text, stats, source="logs")
    counts = stats.snapshot()
    # overlapping hits of the record-number detector are counted too (the run is named by the cue)
    assert counts == {("logs", f"mask:{n}"): 2 for n in ("name", "ssn", "mrn", "email", "phone", "long_id")}
    assert stats.total() == 12 and stats.total("spans") == 0
    dump = repr(stats) + repr(counts)
    assert not [s for s in SEEDS if s in dump]
    assert stats.reset() == counts and stats.total() == 0


# ---- loading -------------------------------------------------------------------------------------


def test_example_policy_file_spells_out_the_defaults_plus_its_additions():
    policy = load_policy(REPO_ROOT / "examples" / "redaction-policy.yaml")
    d = default_policy()
    assert policy.mask_patterns[:len(d.mask_patterns)] == d.mask_patterns
    assert [p.name for p in policy.mask_patterns[len(d.mask_patterns):]] == ["badge", "encounter"]
    assert (policy.drop_query_strings, policy.url_attributes, policy.drop_attributes, policy.keep_attributes,
            policy.mask_path_segments, policy.path_segment_patterns, dict(policy.allowlists)) == (
        d.drop_query_strings, d.url_attributes, d.drop_attributes, d.keep_attributes,
        d.mask_path_segments, d.path_segment_patterns, {})
    assert redact_text(policy, "badge EMP-123456 SSN 078-05-1120") == "badge [REDACTED:badge] SSN [REDACTED:ssn]"


def test_keys_that_name_a_person_are_dropped():
    attrs = {"patient": "Philippa Wexcombe", "X-Patient-Name": "x", "app.contact_email": "x", "outcome": "hit"}
    assert redact_attributes(P, attrs) == {"outcome": "hit"}


def test_load_policy_merges_patterns_by_name(tmp_path):
    f = tmp_path / "p.yaml"
    f.write_text(
        "mask_patterns:\n"
        "  - name: employee_id\n    pattern: 'EMP-\\d{5}'\n"
        "  - name: phone\n    enabled: false\n"
        "drop_attributes: ['secret.*']\n"
    )
    policy = load_policy(f)
    assert [p.name for p in policy.mask_patterns] == ["email", "ssn", "mrn", "dob", "name", "phi_key", "phi_attribute", "dob_any",
                                                     "insurance", "address", "street_name", "record_cue", "ip", "name_known", "name_known_last",
                                                     "name_title", "name_clinical", "name_context", "name_given", "long_id", "phone_cue", "employee_id"]
    assert redact_text(policy, "badge EMP-12345 call 617-555-0142") == "badge [REDACTED:employee_id] call 617-555-0142"
    assert redact_attributes(policy, {"secret.a": "1", "user.id": "2"}) == {"user.id": "2"}
    assert load_policy("") == default_policy()


@pytest.mark.parametrize("doc, message", [
    ({"drop_query_string": True}, "drop_query_string"),
    ({"mask_patterns": [{"name": "x", "pattern": "("}]}, "not a valid regex"),
    ({"mask_patterns": [{"name": "x", "pattern": "a*"}]}, "empty string"),
    ({"mask_patterns": [{"name": "x", "pattern": "REDACTED"}]}, "marker"),
    ({"allowlists": {"requests": ["a"]}}, "request legs"),
    ({"version": 2}, "version"),
])
def test_bad_policies_are_config_errors(doc, message):
    with pytest.raises(ConfigError, match=message):
        policy_from_mapping(doc)


def test_missing_policy_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        load_policy(tmp_path / "nope.yaml")


def test_sequential_mode_for_back_references():
    policy = RedactionPolicy(mask_patterns=(MaskPattern("twice", r"(\w{3,})-\1"),) + DEFAULT_MASK_PATTERNS)
    assert redact_text(policy, "abc-abc and SSN 078-05-1120") == "[REDACTED:twice] and SSN [REDACTED:ssn]"


# ---- properties ----------------------------------------------------------------------------------

ssns = st.builds(lambda a, b, c: f"{a:03d}-{b:02d}-{c:04d}", st.integers(0, 999), st.integers(0, 99),
                 st.integers(0, 9999))
emails = st.builds(lambda u, d, t: f"{u}@{d}.{t}",
                   st.from_regex(r"[a-z][a-z0-9._+-]{0,12}", fullmatch=True),
                   st.from_regex(r"[a-z][a-z0-9-]{0,10}", fullmatch=True),
                   st.sampled_from(["org", "com", "health", "net"]))
mrn_numbers = st.from_regex(r"\d{6,10}", fullmatch=True)
#: (text placed, secret that must not survive): for an MRN the number after its cue
seeds = st.one_of(
    ssns.map(lambda s: (s, s)),
    emails.map(lambda e: (e, e)),
    st.tuples(st.sampled_from(["MRN", "mrn", "Mrn", "MRN#"]), st.sampled_from(["", " ", ": ", "#", "="]),
              mrn_numbers).map(lambda t: ("".join(t), t[2])),
)
filler = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=30)
texts = st.lists(st.one_of(filler, seeds.map(lambda s: s[0])), max_size=8).map("".join)
NO_REQUIRES = RedactionPolicy(mask_patterns=tuple(replace(p, requires=()) for p in DEFAULT_MASK_PATTERNS))


@pytest.mark.slow
@settings(max_examples=300, deadline=None)
@given(texts)
def test_masking_is_idempotent(text):
    once = masked(text)
    assert masked(once) == once
    url_once = redact_url(P, text)
    assert redact_url(P, url_once) == url_once


@pytest.mark.slow
@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(filler, seeds), min_size=1, max_size=4), filler)
def test_seeded_values_never_survive(parts, tail):
    text = "".join(f + seed for f, (seed, _) in parts) + tail
    secrets = [secret for _, (_, secret) in parts]
    for out in (masked(text), redact_url(P, text), redact_url(P, "/p/" + text),
                redact_attributes(P, {"k": text})["k"]):
        assert not [s for s in secrets if s in out], (text, out)


@pytest.mark.slow
@settings(max_examples=300, deadline=None)
@given(texts)
def test_requires_never_change_a_result(text):
    """The ``requires`` shortcuts of the defaults only skip searches that could not match."""
    assert masked(text) == redact_text(NO_REQUIRES, text)
    assert redact_url(P, text) == redact_url(NO_REQUIRES, text)
