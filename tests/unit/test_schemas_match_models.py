"""The committed JSON Schema files and the msgspec models cannot drift apart.

(a) Structurally: msgspec's own JSON Schema for the models and the committed files agree on
    property names, required fields, types, enums, bounds, patterns, formats and defaults.
(b) Behaviourally: for arbitrary valid and mutated documents, jsonschema (draft 2020-12, with
    format checking) and the msgspec decoder accept and reject the same ones.

Known, deliberate differences are pinned in ``test_known_divergences`` and kept out of (b).
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator, FormatChecker
from referencing import Registry, Resource

from hub.names import LEGS, RECORD_REQUEST_LEG, RECORD_TYPES
from hub.records.request_leg import RequestLeg, RequestLegEvent

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas" / "json"
ENVELOPE = json.loads((SCHEMAS / "envelope.v1.json").read_text())
LEG_SCHEMA = json.loads((SCHEMAS / "request_leg.v1.json").read_text())

# ---- a strict RFC 3339 "date-time" format checker ------------------------------------------
# jsonschema checks "date-time" only when rfc3339-validator is installed; do not depend on it.
_RFC3339 = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(\.\d+)?(?:[Zz]|([+-])(\d{2}):(\d{2}))$"
)


def _is_rfc3339(value: object) -> bool:
    if not isinstance(value, str):
        return True
    m = _RFC3339.match(value)
    if not m or "\n" in value:
        return False
    y, mo, d, h, mi, s = (int(g) for g in m.groups()[:6])
    try:
        datetime(y, mo, d, h, mi, s)
    except ValueError:
        return False
    if m.group(8):
        return int(m.group(9)) < 24 and int(m.group(10)) < 60
    return True


FORMATS = FormatChecker()
FORMATS.checks("date-time")(_is_rfc3339)
REGISTRY = Registry().with_resources(
    [(ENVELOPE["$id"], Resource.from_contents(ENVELOPE)), (LEG_SCHEMA["$id"], Resource.from_contents(LEG_SCHEMA))]
)
ENVELOPE_VALIDATOR = Draft202012Validator(ENVELOPE, registry=REGISTRY, format_checker=FORMATS)
LEG_VALIDATOR = Draft202012Validator(LEG_SCHEMA, registry=REGISTRY, format_checker=FORMATS)


def test_schema_files_are_valid_draft_2020_12():
    for schema in (ENVELOPE, LEG_SCHEMA):
        Draft202012Validator.check_schema(schema)
        assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
        assert schema["$id"].endswith(".v1.json")


# ---- (a) structural comparison -------------------------------------------------------------
_CONSTRAINTS = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "minLength",
                "maxLength", "pattern", "format")


def _norm(prop: dict, refs: dict[str, str]) -> dict:
    """Canonical form of a property schema: types, enum, nullable, constraints, default, $ref."""
    out: dict = {"types": set(), "enum": None, "nullable": False}
    alternatives = prop["anyOf"] if "anyOf" in prop else [prop]
    for alt in alternatives:
        types = alt.get("type")
        types = [types] if isinstance(types, str) else list(types or [])
        if "null" in types:
            out["nullable"] = True
            types.remove("null")
        out["types"].update(types)
        values = [alt["const"]] if "const" in alt else alt.get("enum")
        if values is not None:
            if None in values:
                out["nullable"] = True
            values = {v for v in values if v is not None}
            out["enum"] = (out["enum"] or set()) | values
        for key in _CONSTRAINTS:
            if key in alt:
                out[key] = alt[key]
        if "$ref" in alt:
            out["ref"] = refs[alt["$ref"]]
    if out["enum"] is not None:
        out["types"] = set()  # an enum pins the values; a "type" next to it adds nothing
    out["default"] = prop.get("default", "<required>")
    return out


def _normalise(schema: dict, refs: dict[str, str]) -> dict:
    assert schema.get("type") == "object"
    return {
        "properties": {name: _norm(p, refs) for name, p in schema["properties"].items()},
        "required": set(schema.get("required", ())),
        "additionalProperties": schema.get("additionalProperties", True),
    }


def _model_schemas() -> dict[str, dict]:
    return msgspec.json.schema(RequestLegEvent)["$defs"]


MODEL_REFS = {"#/$defs/RequestLeg": "request_leg.v1", "#/$defs/RequestLegEvent": "envelope.v1"}
FILE_REFS = {LEG_SCHEMA["$id"]: "request_leg.v1", ENVELOPE["$id"]: "envelope.v1"}


def _diff(model: dict, committed: dict) -> list[str]:
    problems = []
    if model["required"] != committed["required"]:
        problems.append(f"required: model {sorted(model['required'])} != file {sorted(committed['required'])}")
    if model["additionalProperties"] != committed["additionalProperties"]:
        problems.append("additionalProperties differs")
    names_m, names_c = set(model["properties"]), set(committed["properties"])
    if names_m != names_c:
        problems.append(f"properties only in model {sorted(names_m - names_c)}, only in file {sorted(names_c - names_m)}")
    for name in sorted(names_m & names_c):
        if model["properties"][name] != committed["properties"][name]:
            problems.append(f"{name}: model {model['properties'][name]} != file {committed['properties'][name]}")
    return problems


def test_request_leg_schema_matches_model():
    model = _normalise(_model_schemas()["RequestLeg"], MODEL_REFS)
    committed = _normalise(LEG_SCHEMA, FILE_REFS)
    assert _diff(model, committed) == []
    assert model["properties"]["leg"]["enum"] == set(LEGS)


def test_envelope_schema_matches_model():
    model = _normalise(_model_schemas()["RequestLegEvent"], MODEL_REFS)
    committed = _normalise(ENVELOPE, FILE_REFS)
    # The envelope is shared by every record type: its "type" lists them all, and the schema of
    # "data" follows from "type" through an if/then. Resolve both for this record type.
    assert committed["properties"]["type"]["enum"] == set(RECORD_TYPES)
    assert model["properties"]["type"]["enum"] == {RECORD_REQUEST_LEG}
    committed["properties"]["type"]["enum"] = {RECORD_REQUEST_LEG}
    branches = [b for b in ENVELOPE["allOf"]
                if b["if"]["properties"]["type"].get("const") == RECORD_REQUEST_LEG]
    assert len(branches) == 1 and branches[0]["if"]["required"] == ["type"]
    committed["properties"]["data"] = _norm(
        {**branches[0]["then"]["properties"]["data"], "default": "<required>"}, FILE_REFS)
    assert committed["properties"]["data"]["ref"] == "request_leg.v1"
    assert _diff(model, committed) == []


def test_every_record_type_has_a_data_schema():
    covered = {b["if"]["properties"]["type"]["const"] for b in ENVELOPE["allOf"]}
    assert covered == set(RECORD_TYPES)


# ---- (b) behavioural comparison ------------------------------------------------------------
_ZONES = [timezone.utc, timezone(timedelta(hours=2)), timezone(timedelta(hours=-5, minutes=-30))]


@st.composite
def timestamps(draw) -> str:
    dt = draw(st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(2100, 1, 1),
                           timezones=st.sampled_from(_ZONES)))
    text = dt.isoformat(timespec=draw(st.sampled_from(["seconds", "milliseconds", "microseconds"])))
    if draw(st.booleans()):
        text = text.replace("+00:00", "Z")
    return text


def _opt(strategy):
    return st.one_of(st.none(), strategy)


texts = st.text(max_size=12)
legs = st.fixed_dictionaries(
    {
        "correlation_id": st.text(min_size=1, max_size=12),
        "leg": st.sampled_from(LEGS),
        "gateway": st.text(min_size=1, max_size=8),
        "route": st.from_regex(r"/[a-z0-9{}/_-]{0,16}", fullmatch=True),
        "method": st.from_regex(r"[A-Z]{1,10}", fullmatch=True),
        "backend": st.text(min_size=1, max_size=8),
        "status": st.integers(0, 599),
        "latency_ms": st.one_of(st.floats(0, 1e9, allow_nan=False), st.integers(0, 10**6)),
        "event_time": timestamps(),
    },
    optional={
        "request_bytes": st.integers(0, 2**32 - 1),
        "response_bytes": st.integers(0, 2**32 - 1),
        "response_hash": texts,
        "error": texts,
        "experiment_id": texts,
        "phase": texts,
    },
)
envelopes = st.fixed_dictionaries(
    {
        "specversion": st.just("1.0"),
        "id": st.text(min_size=1, max_size=12),
        "source": st.from_regex(r"[A-Za-z0-9/:._~-]{1,16}", fullmatch=True),
        "type": st.just(RECORD_REQUEST_LEG),
        "data": legs,
    },
    optional={
        "time": _opt(timestamps()),
        "datacontenttype": _opt(st.just("application/json")),
        "dataschema": _opt(texts),
        "subject": _opt(texts),
        "experimentid": _opt(texts),
        "experimentphase": _opt(texts),
        "traceparent": _opt(texts),
        "tracestate": _opt(texts),
    },
)

# Values that are wrong for some fields and right for others. No integral floats (1.0) and no
# non-RFC-3339 datetime spellings: those are the pinned divergences below.
BAD_VALUES = st.one_of(
    st.sampled_from([
        None, True, False, 0, 1, -1, 1.5, -0.5, 599, 600, 2**32 - 1, 2**32, 2**63, "", "x", "GET",
        "get", "GET\t", "/a b", "/a?b=1", "a/b", "/patients/{id}", "shadow", "mirror", "1.0", "2.0",
        "application/json", "text/plain", RECORD_REQUEST_LEG, RECORD_REQUEST_LEG + "x",
        "dev.gamedayhub.other.v1", "2024-01-01T00:00:00Z", "2024-01-01T00:00:00.5+02:00",
        "2024-01-01T00:00:00", "2024-01-01", "2024-13-01T00:00:00Z", "2024-02-30T00:00:00Z",
        "2024-01-01T25:00:00Z", "2024-01-01T00:00:00+24:00", "yesterday", [], {}, ["GET"],
        {"a": 1},
    ]),
    st.text(max_size=6),
    st.integers(-(2**64), 2**64),
    st.floats(allow_nan=False, allow_infinity=False).filter(lambda f: not f.is_integer()),
)

ENVELOPE_FIELDS = sorted(ENVELOPE["properties"])
LEG_FIELDS = sorted(LEG_SCHEMA["properties"])


@st.composite
def mutated(draw, base, fields, nested: bool):
    doc = draw(base)
    for _ in range(draw(st.integers(0, 3))):
        target = doc
        if nested and isinstance(doc.get("data"), dict) and draw(st.booleans()):
            target, names = doc["data"], LEG_FIELDS
        else:
            names = fields
        op = draw(st.sampled_from(["delete", "replace", "extra"]))
        if op == "delete" and target:
            target.pop(draw(st.sampled_from(sorted(target))))
        elif op == "replace":
            target[draw(st.sampled_from(names))] = draw(BAD_VALUES)
        elif op == "extra":
            target[draw(st.text(min_size=1, max_size=8))] = draw(BAD_VALUES)
    return doc


def _msgspec_accepts(doc: dict, model: type) -> bool:
    try:
        msgspec.json.decode(json.dumps(doc).encode(), type=model)
    except msgspec.ValidationError:
        return False
    return True


_SETTINGS = settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.mark.slow
@_SETTINGS
@given(mutated(envelopes, ENVELOPE_FIELDS, nested=True))
def test_envelope_schema_and_decoder_agree(doc):
    by_schema = ENVELOPE_VALIDATOR.is_valid(doc)
    by_model = _msgspec_accepts(doc, RequestLegEvent)
    assert by_schema == by_model, (
        f"jsonschema {'accepts' if by_schema else 'rejects'}, msgspec {'accepts' if by_model else 'rejects'}: "
        f"{[e.message for e in ENVELOPE_VALIDATOR.iter_errors(doc)]}"
    )


@pytest.mark.slow
@_SETTINGS
@given(mutated(legs, LEG_FIELDS, nested=False))
def test_record_schema_and_decoder_agree(doc):
    assert LEG_VALIDATOR.is_valid(doc) == _msgspec_accepts(doc, RequestLeg)


@given(envelopes)
@settings(max_examples=200, deadline=None)
def test_generated_valid_documents_are_accepted_by_both(doc):
    assert ENVELOPE_VALIDATOR.is_valid(doc)
    assert _msgspec_accepts(doc, RequestLegEvent)


# ---- pinned divergences --------------------------------------------------------------------
def _valid_leg(**changes) -> dict:
    doc = {
        "correlation_id": "c1", "leg": "primary", "gateway": "edge", "route": "/patients/{id}",
        "method": "GET", "backend": "patients", "status": 200, "latency_ms": 12.5,
        "event_time": "2024-05-01T10:00:00.123Z",
    }
    doc.update(changes)
    return doc


@pytest.mark.parametrize(
    ("changes", "schema_accepts", "decoder_accepts"),
    [
        # JSON Schema counts 200.0 as an integer; the decoder insists on an integer literal.
        ({"status": 200.0}, True, False),
        # RFC 3339 requires "T" and "+hh:mm"; the decoder also takes a space and "+hhmm".
        ({"event_time": "2024-05-01 10:00:00Z"}, False, True),
        ({"event_time": "2024-05-01T10:00:00+0200"}, False, True),
        # Both reject a leap second (the decoder cannot represent it).
        ({"event_time": "2024-06-30T23:59:60Z"}, False, False),
    ],
)
def test_known_divergences(changes, schema_accepts, decoder_accepts):
    doc = _valid_leg(**changes)
    assert LEG_VALIDATOR.is_valid(doc) is schema_accepts
    assert _msgspec_accepts(doc, RequestLeg) is decoder_accepts
