"""The declarations applied: structural columns refuse what does not fit, free text is masked."""

from __future__ import annotations

import json

import pytest

from hub.abort.records import ALERT_COLUMNS
from hub.experiments.projection import PROJECTION_COLUMNS
from hub.records.request_leg import REQUEST_COLUMNS
from hub.redaction import Redactor, default_policy, redact_rows
from hub.shadow.records import PAIR_COLUMNS

P = default_policy()
E = P.engine()


@pytest.mark.parametrize("shape, value, kept", [
    ("id", "9f1c2d3e4b5a69788796a5b4c3d2e1f0", True),
    ("id", "checkout-svc", True),
    ("id", "jane.doe", False),            # fits the shape, but a name
    ("id", "Jane Doe", False),            # a space
    ("id", "004417829", False),           # a bare MRN-length number
    ("id", "MRN-004417", False),
    ("id", "gw-123456", True),            # a short hex suffix that is all digits
    ("id", "exp-20261207-failover", True),
    ("id", "c1234567", False),            # seven digits in a row
    ("id", "@opentelemetry/instrumentation-http", True),
    ("version", "0.48b0", True),
    ("unit", "{packet}/s", True),
    ("comparison", ">=", True),
    ("field", "$.items[0].price", True),
    ("field", "Jane Doe", False),
    ("phase", "injection", True),
    ("phase", "Mr Okafor", False),
    ("method", "GET", True),
    ("version", "1.2.3", True),
    ("version", "Wexcombe", False),
    ("unit", "ms", True),
    ("unit", "{request}", True),
    ("unit", "{Jane Doe}", False),
    ("severity", "ERROR", True),
    ("severity", "Philippa", False),
    ("schema_url", "https://opentelemetry.io/schemas/1.21.0", True),
    ("tracestate", "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE", True),
    ("tracestate", "mrn=004417829", False),
    ("tracestate", "v=Jane Doe", False),
    ("hex", "a3f9", True),
    ("hex", "Jane", False),
    ("actor", "gameday-hub judge", True),
    ("actor", "jane.doe@example.org", False),
])
def test_structural_shapes(shape, value, kept):
    out = E.struct(shape, value, [])
    assert (out == value) is kept, out
    if not kept:
        assert out == f"[REDACTED:{shape}]" or (shape == "id" and out.startswith("[REDACTED:id:"))


def _row(columns, **values):
    return tuple(values.get(c, "") for c in columns)


def test_request_legs_redact_every_declared_column():
    row = _row(REQUEST_COLUMNS, correlation_id="MRN 004417829", gateway="Jane Doe", backend="jane.doe",
               experiment_id="exp-1", phase="injection", route="/patients/1984-03-12/chart", method="GET",
               response_hash="MRN-00441782", error="lookup for 12 Main Street failed", source="/edge?u=x")
    out = dict(zip(REQUEST_COLUMNS, redact_rows(P, "requests", REQUEST_COLUMNS, [row])[0]))
    # a hash may be any token (compared for equality): a misfit keeps a digest, equal stays equal
    assert all(out[c].startswith("[REDACTED:id:") for c in ("correlation_id", "gateway", "backend", "response_hash"))
    assert E.struct("id", "body-/orders", []) == "body-/orders"
    assert out["experiment_id"] == "exp-1" and out["phase"] == "injection" and out["method"] == "GET"
    assert out["route"] == "/patients/{id}/chart"
    assert out["error"] == "lookup for [REDACTED:address] failed" and out["source"] == "/edge"


def test_experiment_event_payload_is_walked_at_any_depth():
    payload = json.dumps({"kind": "note_added", "name": "db failover", "text": "Patient Jane Doe, DOB 03/12/1984",
                          "parameters": {"nested": [{"mrn": "004417829"}, {"q": "{\"ssn\" : \"123-45-6789\"}"}]}})
    row = _row(PROJECTION_COLUMNS, experiment_id="exp-1", kind="note_added", actor="Okafor Chidi was admitted",
               payload=payload, refusal="wrong key: b'Jane Doe'")
    out = dict(zip(PROJECTION_COLUMNS, Redactor().experiment_events(type("B", (), {"rows": [row]})()).rows[0]))
    doc = json.loads(out["payload"])
    assert doc["name"] == "db failover"
    assert doc["text"] == "Patient [REDACTED:name], DOB [REDACTED:dob]"
    assert doc["parameters"]["nested"][0] == {"mrn": "[REDACTED:phi_key]"}
    assert "123-45-6789" not in doc["parameters"]["nested"][1]["q"]
    assert out["actor"] == "[REDACTED:actor]"
    assert "Jane" not in out["refusal"]


def test_alerts_and_pairs_text_columns():
    alert = _row(ALERT_COLUMNS, kind="alert", rule="error rate for patient Jane Doe", message="seen at 10.1.2.3",
                 example_request_ids=["abc123", "jane.doe"], url="https://hooks/x?token=1",
                 error="Invalid enum value 'Philippa Wexcombe'", top_contributors='{"route": "/p/004417829"}')
    out = dict(zip(ALERT_COLUMNS, redact_rows(P, "alerts", ALERT_COLUMNS, [alert])[0]))
    assert out["rule"] == "error rate for patient [REDACTED:name]"
    assert out["message"] == "seen at [REDACTED:ip]"
    assert out["example_request_ids"][0] == "abc123" and out["example_request_ids"][1].startswith("[REDACTED:id:")
    assert out["url"] == "https://hooks/x" and "Wexcombe" not in out["error"]
    assert "004417829" not in out["top_contributors"]
    pair = _row(PAIR_COLUMNS, gateway="edge", correlation_id="c1", route="/a", method="GET", primary_backend="v1",
                shadow_backend="Jane Smith", outcome="match", differing_fields=["status", "Jane Doe"],
                noise_fields=[], shadow_error="timeout for MRN 004417829")
    out = dict(zip(PAIR_COLUMNS, redact_rows(P, "pairs", PAIR_COLUMNS, [pair])[0]))
    assert out["shadow_backend"].startswith("[REDACTED:id:")
    assert out["differing_fields"] == ["status", "[REDACTED:field]"]
    assert out["shadow_error"] == "timeout for MRN [REDACTED:mrn]"


def test_dead_letter_reason_and_key():
    r = Redactor()
    assert r.text("Invalid enum value 'Zebulon Farquharson' - at `$.leg`") == \
        "Invalid enum value '[REDACTED:value]' - at `$.leg`"
    assert r.key(b"jane.doe") == b"[REDACTED:key]" and r.key(b"9f1c2d3e") == b"9f1c2d3e"
    assert r.key(b"\xff\xfe") == b"[REDACTED:key]"


def test_attribute_keys_that_carry_data_are_dropped():
    out = E.attributes({"Jane Doe": "x", "http.route": "/a", "jane.doe": "y"}, None, [])
    assert out == {"http.route": "/a"}


def test_a_misfit_id_keeps_a_digest_so_distinct_ids_stay_distinct():
    a, b = E.struct("id", "MRN-00441782", []), E.struct("id", "MRN-00441783", [])
    assert a.startswith("[REDACTED:id:") and b.startswith("[REDACTED:id:") and a != b
    assert E.struct("id", "MRN-00441782", []) == a  # the same id, the same digest (pairing, joins)
    assert "00441782" not in a


def test_a_json_document_clean_as_text_is_still_walked():
    doc = '{"Okafor Chidi": 1, "ok": true}'  # a key that is not shaped like a key; no detector hit in it
    assert "Okafor" not in E.text(doc, [])  # JSON in free text is walked as a document too ...
    row = tuple(doc if c == "payload" else "" for c in PROJECTION_COLUMNS)
    out = dict(zip(PROJECTION_COLUMNS, redact_rows(P, "experiments", PROJECTION_COLUMNS, [row])[0]))
    assert "Okafor" not in out["payload"]  # ... but a JSON column is walked: the key is replaced


def test_rows_known_clean_are_stored_as_they_are_and_dirty_ones_are_not():
    clean = _row(REQUEST_COLUMNS, correlation_id="9f1c2d3e4b5a69788796a5b4c3d2e1f0", gateway="edge", route="/a",
                 method="GET", backend="v1", source="/gw")
    dirty = _row(REQUEST_COLUMNS, correlation_id="9f1c2d3e4b5a69788796a5b4c3d2e1f0", gateway="edge", route="/a",
                 method="GET", backend="v1", source="/gw", error="MRN 004417829")
    first = redact_rows(P, "requests", REQUEST_COLUMNS, [clean, dirty])
    again = redact_rows(P, "requests", REQUEST_COLUMNS, [clean, dirty])  # the clean one from the caches now
    assert first[0] is clean and again[0] is clean
    assert again[1][REQUEST_COLUMNS.index("error")] == "MRN [REDACTED:mrn]"
