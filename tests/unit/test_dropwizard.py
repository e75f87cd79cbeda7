"""Dropwizard documents to OTLP: exact integers, tag-like names as attributes, and the start of
cumulative series from the process's uptime, kept across imports."""

from __future__ import annotations

import math

from hub.integrations import dropwizard

BIG = 2 ** 53 + 1  # the first integer a double cannot hold


def points(request):
    out = {}
    for metric in request.resource_metrics[0].scope_metrics[0].metrics:
        kind = metric.WhichOneof("data")
        for dp in getattr(metric, kind).data_points:
            attrs = {kv.key: kv.value.string_value for kv in dp.attributes}
            out[(metric.name, tuple(sorted(attrs.items())))] = dp
    return out


def test_integers_are_sent_exactly():
    doc = {"counters": {"bytes": {"count": BIG}}, "gauges": {"offset": {"value": BIG + 2}, "ratio": {"value": 0.25}},
           "meters": {"hits": {"count": BIG + 4, "m1_rate": 0.0, "m5_rate": 0.0, "m15_rate": 0.0, "mean_rate": 1.5,
                               "units": "events/second"}}}
    got = points(dropwizard.dropwizard_to_otlp(doc, service="s", now_ns=2, start_ns=1))
    assert got[("bytes", ())].as_int == BIG
    assert got[("offset", ())].as_int == BIG + 2
    assert got[("hits", ())].as_int == BIG + 4
    assert got[("ratio", ())].as_double == 0.25 and got[("hits.mean_rate", ())].as_double == 1.5


def test_tag_like_names_become_attributes():
    assert dropwizard.split_name("http.server.requests{method=GET,status=200}") == (
        "http.server.requests", {"method": "GET", "status": "200"})
    assert dropwizard.split_name("kafka.consumer[topic=orders]") == ("kafka.consumer", {"topic": "orders"})
    assert dropwizard.split_name("kafka.consumer[topic:orders,partition:3]") == (
        "kafka.consumer", {"topic": "orders", "partition": "3"})
    assert dropwizard.split_name("kafka.topic=orders.partition=3.lag") == ("kafka.lag", {"topic": "orders", "partition": "3"})
    assert dropwizard.split_name("db.pool{patient=Ada,mrn=004417829}.active") == (
        "db.pool.active", {"patient": "Ada", "mrn": "004417829"})
    for plain in ("jvm.memory.heap.used", "pool[main]", "a=b", "x[k=v]y"):
        assert dropwizard.split_name(plain) == (plain, {})
    doc = {"timers": {"http.server.requests{method=GET}": {
        "count": 3, "max": 2.0, "mean": 1.0, "min": 0.5, "p50": 1.0, "p75": 1.0, "p95": 2.0, "p98": 2.0, "p99": 2.0,
        "p999": 2.0, "stddev": 0.1, "m15_rate": 0.0, "m1_rate": 0.0, "m5_rate": 0.0, "mean_rate": 0.2,
        "duration_units": "milliseconds", "rate_units": "calls/second"}}}
    got = points(dropwizard.dropwizard_to_otlp(doc, service="s", now_ns=2, start_ns=1))
    assert got[("http.server.requests", (("method", "GET"),))].count == 3
    assert got[("http.server.requests.mean_rate", (("method", "GET"),))].as_double == 0.2
    assert got[("http.server.requests.max", (("method", "GET"),))].as_double == 2.0


def test_cumulative_series_start_when_the_process_started_and_keep_that_start(tmp_path):
    path = tmp_path / "starts.json"
    doc = {"gauges": {"jvm.attribute.uptime": {"value": 600_000}, "jvm.attribute.name": {"value": "42@host"}}}
    now = 10_000_000_000_000
    assert dropwizard.ProcessStarts(path).start_ns("svc url", doc, now) == now - 600_000_000_000
    later = {"gauges": {"jvm.attribute.uptime": {"value": 660_123}, "jvm.attribute.name": {"value": "42@host"}}}
    # another import, a minute later: the same process, the same start (one series, no reset)
    assert dropwizard.ProcessStarts(path).start_ns("svc url", later, now + 60_000_000_000) == now - 600_000_000_000
    # a new process: its own start
    restarted = {"gauges": {"jvm.attribute.uptime": {"value": 1_000}, "jvm.attribute.name": {"value": "77@host"}}}
    assert dropwizard.ProcessStarts(path).start_ns("svc url", restarted, now + 90_000_000_000) == now + 89_000_000_000
    # no uptime: the first scrape of the process, kept across imports
    bare = {"counters": {"c": {"count": 1}}}
    assert dropwizard.ProcessStarts(path).start_ns("other url", bare, 5) == 5
    assert dropwizard.ProcessStarts(path).start_ns("other url", bare, 9) == 5


def test_not_finite_gauges_are_kept_and_unreadable_metrics_are_named():
    # Jackson writes a double that is not finite as a string; Python's json reads the bare tokens as floats
    doc = {"gauges": {"g.nan": {"value": "NaN"}, "g.inf": {"value": "Infinity"}, "g.ninf": {"value": "-Infinity"},
                      "g.huge": {"value": float("inf")}, "g.list": {"value": [1, 2]}, "g.null": {"value": None},
                      "g.ok": {"value": 7}},
           "counters": {"c.str": {"count": "abc"}, "c.ok": {"count": -3}},
           "meters": {"m.neg": {"count": -1, "m1_rate": 0, "m5_rate": 0, "m15_rate": 0, "mean_rate": 0}},
           "histograms": {"h.bad": {"count": "x", "p50": "y"}},
           "timers": {"t.list": [1, 2, 3], "t.p": {"count": 2, "p50": "x", "mean": "NaN", "duration_units": "seconds"}}}
    skipped = []
    got = points(dropwizard.dropwizard_to_otlp(doc, service="s", now_ns=2, start_ns=1, skipped=skipped))
    assert math.isnan(got[("g.nan", ())].as_double)
    assert got[("g.inf", ())].as_double == math.inf == got[("g.huge", ())].as_double
    assert got[("g.ninf", ())].as_double == -math.inf
    assert math.isnan(got[("t.p.mean", ())].as_double)
    assert got[("c.ok", ())].as_int == -3 and got[("g.ok", ())].as_int == 7 and got[("t.p", ())].count == 2
    reasons = dict(skipped)
    assert set(reasons) == {"g.list", "g.null", "c.str", "m.neg", "h.bad", "t.list", "t.p p50"}
    assert reasons["c.str"] == 'count "abc" is not a finite number'
    assert reasons["m.neg"] == "count -1 is negative, which a monotonic count never is"
    assert ("m.neg", ()) not in got and ("m.neg.m1_rate", ()) not in got and ("h.bad", ()) not in got
    assert reasons["g.list"] == "gauge value is not a number: [1, 2]"
    assert dropwizard._skipped_text(skipped, shown=2) == (
        'c.str: count "abc" is not a finite number; m.neg: count -1 is negative, which a monotonic count never is; '
        "and 3 more); 2 gauge(s) not stored, not numbers (g.list, g.null)").replace("c.str", "5 skipped (c.str", 1)


def test_a_count_that_goes_down_is_a_new_process_and_an_unknown_start_is_no_point(tmp_path):
    starts = dropwizard.ProcessStarts(tmp_path / "starts.json")

    def scrape(hits):
        return {"meters": {"hits": {"count": hits}}, "counters": {"active": {"count": 3}}}

    # no uptime: the first scrape is the start, and carries no cumulative point (no interval of no length)
    first = starts.observe("svc url", scrape(900), 1_000)
    assert (first.start_ns, first.known, first.restart) == (1_000, False, "")
    request = dropwizard.dropwizard_to_otlp(scrape(900), service="s", now_ns=1_000, start_ns=first.start_ns,
                                            cumulative=first.known)
    assert points(request) == {}
    assert dropwizard.ProcessStarts(tmp_path / "starts.json").observe("svc url", scrape(1000), 2_000) \
        == dropwizard.Start(1_000)
    # the JVM restarted without JvmAttributeGaugeSet: the meter went back, a new start after the last scrape
    restarted = dropwizard.ProcessStarts(tmp_path / "starts.json").observe("svc url", scrape(10), 3_000)
    assert restarted.start_ns == 2_000 and restarted.known
    assert restarted.restart == "the count of hits went down from 1000 to 10"
    assert dropwizard.ProcessStarts(tmp_path / "starts.json").observe("svc url", scrape(20), 4_000) \
        == dropwizard.Start(2_000)


def test_a_large_registry_is_cut_into_records_under_the_limit():
    timer = {"count": 5, "max": 1.0, "mean": 0.5, "min": 0.1, "p50": 0.5, "p75": 0.6, "p95": 0.9, "p98": 0.95,
             "p99": 0.99, "p999": 1.0, "stddev": 0.1, "m15_rate": 1, "m1_rate": 1, "m5_rate": 1, "mean_rate": 1,
             "duration_units": "seconds", "rate_units": "calls/second"}
    doc = {"version": "4.0.0", "timers": {
        f"http.server.requests{{method=GET,uri=/api/v1/resource/{i:06d},status=200}}": dict(timer, count=i)
        for i in range(3000)}}
    request = dropwizard.dropwizard_to_otlp(doc, service="s", experiment_id="exp-1", now_ns=2, start_ns=1)
    assert request.ByteSize() > 3_000_000
    parts = dropwizard.split_request(request, 1_000_000)
    assert len(parts) > 3 and all(part.ByteSize() <= 1_000_000 for part in parts)
    assert all(part.resource_metrics[0].resource == request.resource_metrics[0].resource for part in parts)
    assert [m for part in parts for m in part.resource_metrics[0].scope_metrics[0].metrics] \
        == list(request.resource_metrics[0].scope_metrics[0].metrics)
    assert dropwizard.split_request(request, request.ByteSize()) == [request]
