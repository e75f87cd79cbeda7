"""Infrastructure names, ids and addresses are kept; patient data in the shapes people use is not."""

from __future__ import annotations

import pytest

from hub.records.request_leg import REQUEST_COLUMNS
from hub.redaction import default_policy, redact_rows

P = default_policy()
E = P.engine()


@pytest.mark.parametrize("value", [
    # a listed given name joined with an infrastructure word names a component
    "grace-scheduler", "mark-sweep-gw", "rose-db", "jack-gateway", "april-batch", "victoria-gw", "Dr-Strange-gw",
    # ordinary ids with long digit runs: hex, epoch milliseconds, a sequence after a date or a component word
    "corr-0a1b2c3d4e5f", "corr-123456789abc", "1733590000123", "order-20241207-0001234", "db-shard-12345678",
    # a version is not an IP address
    "payments-v2.3.1.0",
])
def test_infrastructure_ids_are_kept(value):
    assert E.struct("id", value, []) == value


@pytest.mark.parametrize("shape, value", [
    ("id", "jane.doe"), ("id", "jane-brambleworth"), ("id", "MRN-00441782"), ("id", "004417829"),
    ("id", "E00441782"), ("id", "6175550142"),
    # ISO dates of birth inside structural values
    ("id", "db-1995-02-15"), ("id", "zebulon-quillfeather-1962-03-14"), ("field", "$.dob.1986-01-03"),
    ("endpoint", "10.0.0.5"), ("endpoint", "jane.doe:8080"),
])
def test_patient_data_in_structural_values_is_not(shape, value):
    assert E.struct(shape, value, []) != value


@pytest.mark.parametrize("value", ["127.82.156.156:32923", "10.0.0.5:443", "[fd00::1]:443", "orders-db:5432"])
def test_a_backend_server_address_with_a_port_is_kept(value):
    row = tuple(value if c == "backend" else "" for c in REQUEST_COLUMNS)
    assert redact_rows(P, "requests", REQUEST_COLUMNS, [row])[0][REQUEST_COLUMNS.index("backend")] == value


@pytest.mark.parametrize("text, expected", [
    ("client 10.78.64.23.", "client [REDACTED:ip]."),
    ("deployed payments-v2.3.1.0 to prod", "deployed payments-v2.3.1.0 to prod"),
])
def test_ip_addresses_in_text(text, expected):
    assert E.text(text, []) == expected


def test_json_text_stays_json_when_values_under_phi_keys_are_masked():
    import json

    doc = ('{ "patient" :  { "first_name":"Zebulon" ,"last_name" : "Quillfeather", "mrn" :"00441761",'
           '"ssn":  "123-45-6789", "dob"\t:"1962-03-14", "ip" : "10.78.64.23"}}')
    out = E.text(doc, [])
    assert json.loads(out) == {"patient": "[REDACTED:phi_key]"}
    line = 'request body {"mrn": "004417829", "allergies": ["penicillin", "latex"], "ok": 1} failed'
    out = E.text(line, [])
    body = json.loads(out[len("request body "):-len(" failed")])
    assert body["ok"] == 1 and "004417829" not in out and "penicillin" not in out
    assert body["allergies"][0].startswith("[REDACTED:")
    assert E.text(out, []) == out  # masking settles


def test_a_json_key_with_a_trailing_space_inside_escaped_json_keeps_no_value():
    import json

    inner = json.dumps({"note": json.dumps({"name ": "Zebulon Quillfeather", "mrn": "00441761"})})
    out = E.text(f"upstream said {inner} ; done", [])
    assert "Quillfeather" not in out and "00441761" not in out
    assert json.loads(json.loads(out[len("upstream said "):-len(" ; done")])["note"])["name "].startswith("[REDACTED:")


@pytest.mark.parametrize("reason", [
    "'utf-8' codec can't decode byte 0xff in position 3: invalid start byte",
    "Error parsing message with type 'opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest'",
])
def test_dead_letter_reasons_keep_codec_and_type_names(reason):
    from hub.redaction import Redactor

    assert Redactor().text(reason) == reason


def test_dead_letter_reasons_still_cut_other_quoted_values():
    from hub.redaction import Redactor

    assert Redactor().text("Invalid enum value 'jane.m.doe'") == "Invalid enum value '[REDACTED:value]'"
