"""The noise model: what a secondary also shows is noise, per route and per JSON field."""

from __future__ import annotations

import orjson

from hub.shadow.noise import WHOLE_BODY, NoiseModel, body_diff, clean_comparison, json_diff

OK = {"primary_status": 200, "secondary_status": 200}


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
        model.observe_secondary("/patients/{id}", ["generated_at"], **OK)
        model.observe_secondary("/orders", [], **OK)
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
        model.observe_secondary("/r", ["flaky"] if i < 3 else [], **OK)
    assert model.classify("/r", ["flaky"]).real == ["flaky"]


def test_declared_nondeterministic_fields_per_route_and_everywhere():
    model = NoiseModel({"/r": ["meta.*"], "*": ["request_id", "items[].updated"]})
    c = model.classify("/r", ["meta.at", "request_id", "items[].updated", "items[].price", "meta"])
    assert c.noise == ["items[].updated", "meta.at", "request_id"]
    assert c.real == ["items[].price", "meta"]
    assert model.classify("/s", ["meta.at"]).real == ["meta.at"]


def test_whole_body_secondary_evidence_covers_every_field():
    model = NoiseModel()
    model.observe_secondary("/r", [WHOLE_BODY], **OK)
    assert model.classify("/r", ["anything", WHOLE_BODY]).real == []


def test_only_clean_comparisons_teach_the_model():
    """A primary that fails (or answers another status than the secondary) teaches nothing: its
    error body differs from the secondary's in every field, and learning that would make every
    later real difference noise."""
    model = NoiseModel()
    for _ in range(200):  # the primary's 503s: the secondary's answer differs everywhere
        assert not model.observe_secondary("/r", ["balance", "name", "error"], primary_status=503,
                                           secondary_status=200)
        assert not model.observe_secondary("/r", ["error", "trace_id"], primary_status=503, secondary_status=503)
    for _ in range(20):
        assert model.observe_secondary("/r", [], **OK)
    assert model.snapshot()["/r"] == {"compared": 20, "skipped": 400, "rates": {}}
    assert model.classify("/r", ["balance"]).real == ["balance"]
    assert [clean_comparison(*s) for s in ((200, 200), (304, 304), (200, 201), (503, 503), (404, 404), (0, 0))] == \
        [True, True, False, False, False, False]
