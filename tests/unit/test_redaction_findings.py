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
    # the judge's alert ids end with the breach's epoch second after a rule name
    "exp-9f93c3/checkout-errors/1796665782", "exp-1/errors/1796665782123",
])
def test_infrastructure_ids_are_kept(value):
    assert E.struct("id", value, []) == value


@pytest.mark.parametrize("shape, value", [
    ("id", "jane.doe"), ("id", "jane-brambleworth"), ("id", "MRN-00441782"), ("id", "004417829"),
    ("id", "E00441782"), ("id", "6175550142"),
    # ISO dates of birth inside structural values
    ("id", "db-1995-02-15"), ("id", "zebulon-quillfeather-1962-03-14"), ("field", "$.dob.1986-01-03"),
    ("endpoint", "10.0.0.5"), ("endpoint", "jane.doe:8080"),
    ("id", "k8s-node-10.0.0.1"),  # a number after an infrastructure word, but an IP address
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


@pytest.mark.parametrize("text, gone", [
    ("paged dr Dunbranington about bed 12", "Dunbranington"),
    ("actor dr.kessmorberg joined", "kessmorberg"),
    ("mr brackwater called back", "brackwater"),
    ("Patient: zebulon quelkessworth", "quelkessworth"),
])
def test_lower_case_titles_and_names_after_a_cue(text, gone):
    assert gone not in E.text(text, [])


@pytest.mark.parametrize("text", ["dr failover drill ok", "cache miss Redis", "p99 200 ms timeout",
                                  "mr !1234 merged", "ssn=x failed"])
def test_lower_case_words_that_are_no_titles_are_kept(text):
    out = E.text(text, [])
    assert out.split()[-1] == text.split()[-1], out


def test_dead_letter_json_payloads_are_walked_like_documents():
    import json

    from hub.redaction import Redactor

    r = Redactor()
    leg = json.dumps({"specversion": "1.0", "id": "x", "source": "/x", "type": "dev.gamedayhub.request.leg.v1",
                      "data": {"correlation_id": "c1", "leg": "Barnaby Haskkessberg", "gateway": "g"}})
    out = r.dead_letter_value(leg.encode()).decode()
    assert "Haskkessberg" not in out and json.loads(out)["data"]["gateway"] == "g"
    otlp = ('{ "resourceSpans" : [ {"resource": {"attributes": [{"key":"patient", "value": {"stringValue": '
            '"Ottoline Lornkessberg"}}, {"key":"service.name","value":{"stringValue":"orders"}}]}}]}')
    out = r.dead_letter_value(otlp.encode()).decode()
    assert "Lornkessberg" not in out and "orders" in out
    # not JSON any more (cut, binary after it): the attribute pair is still found as text
    out = r.dead_letter_value(otlp[:-3].encode() + b"\xff\xfe").decode("latin-1")
    assert "Lornkessberg" not in out and "orders" in out


def test_the_actor_in_an_experiment_payload_is_structural_as_in_its_column():
    import json

    from hub.experiments.projection import PROJECTION_COLUMNS

    payload = json.dumps({"kind": "experiment_started", "actor": "dr.kessmorberg 555-0615", "forced": True})
    row = tuple({"payload": payload, "actor": "dr.kessmorberg 555-0615", "kind": "experiment_started"}.get(c, "")
                for c in PROJECTION_COLUMNS)
    out = dict(zip(PROJECTION_COLUMNS, redact_rows(P, "experiments", PROJECTION_COLUMNS, [row])[0]))
    assert out["actor"] == "[REDACTED:actor]" and json.loads(out["payload"])["actor"] == "[REDACTED:actor]"
    ok = json.dumps({"kind": "experiment_started", "actor": "ops-bot"})
    assert E.json_text(ok, []) == ok


@pytest.mark.parametrize("url, expected", [
    ("/patients/ralquelington/chart", "/patients/{id}/chart"),
    ("/patients/Zebulon-Fenquelington/dob/1962-03-14", "/patients/{id}/dob/{id}"),
    ("/patients/Zebulon%20Queldunworth/chart", "/patients/{id}/chart"),
    ("/api/members/okafor", "/api/members/{id}"),
    ("/patients/{id}/chart", "/patients/{id}/chart"),
    ("/api/patients/:id", "/api/patients/:id"),
    ("/patients/search", "/patients/search"),
    ("/patients", "/patients"),
])
def test_a_segment_after_a_phi_collection_word_names_a_person(url, expected):
    assert E.url(url, []) == expected
    assert E.struct("route", url, []) == expected


def test_phi_collection_segments_in_text_and_attributes_and_a_policy_of_its_own():
    from hub.redaction import policy_from_mapping

    assert E.text("GET /patients/ralquelington/chart 500", []) == "GET /patients/{id}/chart 500"
    assert E.attributes({"url.path": "/patients/ralquelington/chart"}, None, []) == {"url.path": "/patients/{id}/chart"}
    own = policy_from_mapping({"phi_collections": ["residents"]}).engine()
    assert own.url("/residents/ralquelington", []) == "/residents/{id}"
    assert own.url("/patients/ralquelington", []) == "/patients/ralquelington"


@pytest.mark.parametrize("text, gone", [
    ("born 3rd of March 1962", "1962"),
    ("call 617.555.0613 or 6175550614 or 555-0615", "555-0615"),
    ("MRN#00441616 chart 00441617 record no. 00441618", "00441617"),
    ("MRN#00441616 chart 00441617 record no. 00441618", "00441618"),
    ("lives on Larkspur Lane near the park", "Larkspur"),
])
def test_free_text_identifiers_without_the_usual_cue(text, gone):
    assert gone not in E.text(text, [])


@pytest.mark.parametrize("text", ["latency 200-1000 ms", "ports 8000-9000", "fast lane enabled", "record 12 rows"])
def test_free_text_that_only_looks_like_them_is_kept(text):
    assert E.text(text, []) == text


def test_a_person_joined_to_a_phi_collection_word_in_an_id():
    assert E.struct("id", "patient-dundunworth", []) != "patient-dundunworth"
    for kept in ("patient-api-db-failover", "patients-db-replica-b", "patient-search"):
        assert E.struct("id", kept, []) == kept


def test_json_nested_deeper_than_telemetry_does_not_exhaust_the_stack():
    deep = "[" * 900 + '"Patient Jane Doe"' + "]" * 900  # orjson reads it; walked naively it overflows the stack
    out = E.text(deep, [])
    assert "Jane Doe" not in out
    obj = '{"a":' * 900 + '"x"' + "}" * 900
    assert "[REDACTED:depth]" in E.text(obj, [])


@pytest.mark.parametrize("text", [
    "patient-api-gameday-yaqivm: rule 'api-failing' (abort) firing: error_rate 0.1336 > 0.05",
    "patient-api: rule api-failing fired",
    "patients-db-replica-b: lagging 3 s",
])
def test_a_service_or_experiment_name_before_a_colon_is_not_a_phi_key(text):
    assert E.text(text, []) == text


@pytest.mark.parametrize("text, gone", [
    ("patient-name: Zed Quill", "Quill"),
    ("patient: Ann Bolt", "Bolt"),
    ("patient.record-locator: ZX81", "ZX81"),
])
def test_phi_keys_with_hyphens_still_mask_their_value(text, gone):
    assert gone not in E.text(text, [])
