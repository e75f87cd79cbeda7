"""Dropwizard documents to OTLP: exact integers, tag-like names as attributes, and the start of
cumulative series from the process's uptime, kept across imports."""

from __future__ import annotations

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
