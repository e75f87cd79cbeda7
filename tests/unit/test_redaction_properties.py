"""Property: an identifier from the corpus generator, embedded anywhere in any free-text or nested
value, is never found in the redacted output."""

from __future__ import annotations

import json
import random
from dataclasses import replace

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hub.abort.records import ALERT_COLUMNS
from hub.experiments.projection import PROJECTION_COLUMNS
from hub.redaction import default_policy, redact_rows
from hub.redaction.corpus import KINDS, needles, patients, sentence
from hub.redaction.policy import DEFAULT_MASK_PATTERNS, RedactionPolicy

P = default_policy()
E = P.engine()

WORDS = st.lists(st.sampled_from(["timeout", "GET", "upstream", "retry", "ward", "4B", "after", "the", "failover",
                                  "ok", "Error:", "db-primary", "took", "12ms", "ICU", "chart", "status=500", "->",
                                  "note", "zone a", "cache", "lab", "at", "2026-12-07T10:00:00Z", "x", "ID"]),
                 max_size=6).map(" ".join)
SEPARATORS = st.sampled_from([" ", ", ", "\n", "\t", " (", ") ", ": ", "=", " \"", "\" ", " '", "; ", " - ", " [", "] "])


@st.composite
def identifier(draw):
    kind = draw(st.sampled_from(KINDS))
    patient = patients(1, draw(st.integers(0, 2**32 - 1)))[0]
    return kind, patient.value(kind)


@st.composite
def embedded_text(draw, value: str) -> str:
    return draw(WORDS) + draw(SEPARATORS) + value + draw(SEPARATORS) + draw(WORDS)


@st.composite
def nested(draw, leaf: str, depth: int):
    """``leaf`` inside lists and maps, ``depth`` levels down, under arbitrary keys."""
    value = leaf
    for _ in range(depth):
        key = draw(st.sampled_from(["detail", "data", "items", "ctx", "v", "note", "args", "payload", "x-y"]))
        value = draw(st.sampled_from([lambda v: {key: v}, lambda v: [1, v], lambda v: {key: [v, {"ok": True}]}]))(value)
    return value


def _dumps(doc, spacing: int) -> str:
    if spacing == 0:
        return json.dumps(doc, separators=(",", ":"))
    if spacing == 1:
        return json.dumps(doc, separators=(" , ", " : "))
    return json.dumps(doc, indent=spacing)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), ident=identifier())
def test_an_identifier_in_free_text_is_never_kept(data, ident):
    kind, value = ident
    text = data.draw(embedded_text(value))
    out = E.text(text, [])
    for n in needles(kind, value, value):
        assert n.lower() not in out.lower(), (kind, n, text, out)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), ident=identifier(), depth=st.integers(0, 6), spacing=st.integers(0, 3),
       as_string=st.booleans())
def test_an_identifier_nested_at_any_depth_in_any_value_is_never_kept(data, ident, depth, spacing, as_string):
    kind, value = ident
    leaf = data.draw(embedded_text(value)) if as_string else value
    doc = data.draw(nested(leaf, depth))
    text = _dumps(doc, spacing)
    # as an attribute value (nested OTLP values arrive as JSON text), as a JSON document column
    # (experiment payloads, alert contributors) and as free text in a column
    outs = [
        json.dumps(E.attributes({"app.detail": text}, None, [])),
        E.json_text(text, []),
        E.text(text, []),
    ]
    row = tuple(text if c in ("payload",) else "" for c in PROJECTION_COLUMNS)
    outs.append(json.dumps(redact_rows(P, "experiments", PROJECTION_COLUMNS, [row])[0], default=str))
    alert = tuple(text if c in ("top_contributors", "message", "rule") else "" for c in ALERT_COLUMNS)
    outs.append(json.dumps(redact_rows(P, "alerts", ALERT_COLUMNS, [alert])[0], default=str))
    for out in outs:
        for n in needles(kind, value, value):
            assert n.lower() not in out.lower(), (kind, n, text, out)


def test_the_generator_makes_every_kind_in_several_formats():
    rng = random.Random(0)
    people = patients(300, rng.randrange(1000))
    for kind in KINDS:
        shapes = {"".join("9" if ch.isdigit() else "a" if ch.isalpha() else ch for ch in p.value(kind)) for p in people}
        assert len(shapes) >= 3, (kind, shapes)


NO_REQUIRES = RedactionPolicy(mask_patterns=tuple(replace(p, requires=()) for p in DEFAULT_MASK_PATTERNS)).engine()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), ident=identifier(), kind=st.sampled_from(KINDS))
def test_the_detectors_requires_only_skip_what_cannot_match(data, ident, kind):
    """The ``requires`` speed-ups of the detectors never change a result on corpus-like text."""
    _, value = ident
    rng = random.Random(data.draw(st.integers(0, 2**16)))
    for text in (data.draw(embedded_text(value)), sentence(kind, value, rng),
                 json.dumps({"ctx": {"note": sentence(kind, value, rng)}}, separators=(" , ", " : "))):
        assert E.text(text, []) == NO_REQUIRES.text(text, []), text
