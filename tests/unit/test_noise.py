"""The noise model: what a secondary also shows is noise, per route and per JSON field."""

from __future__ import annotations

import orjson

from hub.shadow.noise import WHOLE_BODY, NoiseModel, body_diff, json_diff


def test_json_diff_folds_indices_and_sees_missing_fields():
    a = {"id": 1, "items": [{"ts": 1, "v": "x"}, {"ts": 2, "v": "y"}], "meta": {"at": "t1"}}
    b = {"id": 1, "items": [{"ts": 3, "v": "x"}, {"ts": 4, "v": "z"}], "meta": {"at": "t2", "extra": True}}
    assert json_diff(a, b) == ["items[].ts", "items[].v", "meta.at", "meta.extra"]
    assert json_diff(a, a) == []
    assert json_diff({"n": 1}, {"n": 1.0}) == ["n"]  # a type change is a difference


def test_body_diff_non_json_is_the_whole_body():
    assert body_diff(b"same", b"same") == []
    assert body_diff(b"<html>a", b"<html>b") == [WHOLE_BODY]
    assert body_diff(orjson.dumps({"a": 1}), orjson.dumps({"a": 2})) == ["a"]


def test_fields_that_the_secondary_also_changes_are_noise_per_route():
    model = NoiseModel()
    for _ in range(50):
        model.observe_secondary("/patients/{id}", ["generated_at"])
        model.observe_secondary("/orders", [])
    c = model.classify("/patients/{id}", ["generated_at", "name"])
    assert (c.real, c.noise) == (["name"], ["generated_at"])
    # the same field on a route where the secondary agrees is a real difference
    assert model.classify("/orders", ["generated_at"]).real == ["generated_at"]
    # a route never compared with a secondary: nothing is noise
    assert model.classify("/other", ["generated_at"]).noise == []
    assert model.rates("/patients/{id}") == {"generated_at": 1.0}


def test_a_rare_secondary_difference_stays_below_the_noise_rate():
    model = NoiseModel(noise_rate=0.05)
    for i in range(100):
        model.observe_secondary("/r", ["flaky"] if i < 3 else [])
    assert model.classify("/r", ["flaky"]).real == ["flaky"]


def test_declared_nondeterministic_fields_per_route_and_everywhere():
    model = NoiseModel({"/r": ["meta.*"], "*": ["request_id", "items[].updated"]})
    c = model.classify("/r", ["meta.at", "request_id", "items[].updated", "items[].price", "meta"])
    assert c.noise == ["items[].updated", "meta.at", "request_id"]
    assert c.real == ["items[].price", "meta"]
    assert model.classify("/s", ["meta.at"]).real == ["meta.at"]


def test_whole_body_secondary_evidence_covers_every_field():
    model = NoiseModel()
    model.observe_secondary("/r", [WHOLE_BODY])
    assert model.classify("/r", ["anything", WHOLE_BODY]).real == []
