"""/metrics of the worker and the gateway: Prometheus text that prometheus_client's own parser reads
back, HELP and TYPE for every family, label values escaped, the published names kept."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client.parser import text_string_to_metric_families

from hub.api.server import ApiContext, build_app
from hub.gateway.config import parse_config
from hub.gateway.proxy import Gateway
from hub.metrics import Families, exposition
from hub.storage.sink import SinkHealth
from streams.worker import metric_families

HOSTILE = 'not "JSON" at C:\\tmp\nsecond line'


def parsed(text: str) -> dict[str, tuple[str, str, list]]:
    return {f.name: (f.type, f.documentation, f.samples) for f in text_string_to_metric_families(text)}


def assert_help_and_type_for_every_family(text: str) -> None:
    lines = text.splitlines()
    helped = {line.split()[2] for line in lines if line.startswith("# HELP ")}
    typed = {line.split()[2] for line in lines if line.startswith("# TYPE ")}
    samples = {line.split("{")[0].split(" ")[0] for line in lines if line and not line.startswith("#")}
    assert samples and samples <= helped and samples <= typed, (samples - helped, samples - typed)


def test_families_escape_label_values_and_declare_each_family():
    families = Families()
    families.add("hub_x_total", 3, kind="counter", help="A count.", reason=HOSTILE)
    families.add("hub_level", 2.5, kind="gauge", help="A level.")
    families.add("hub_seconds", 1, kind="untyped", help="Seconds so far.", step="decode")
    text = exposition(families).decode()
    assert_help_and_type_for_every_family(text)
    got = parsed(text)
    assert got["hub_x"][0] == "counter" and got["hub_x"][2][0].labels == {"reason": HOSTILE}
    assert got["hub_level"][:2] == ("gauge", "A level.") and got["hub_seconds"][0] == "unknown"
    with pytest.raises(ValueError):
        Families().add("hub_count", 1, kind="counter", help="named without _total")


def _sink(name: str) -> SimpleNamespace:
    stats = SimpleNamespace(stored=5, skipped=1, batches=2, insert_seconds=0.25,
                            phase_seconds={"decode": 0.1, "insert": 0.2}, invalid_by_reason={HOSTILE: 2, "not JSON": 1})
    return SimpleNamespace(spec=SimpleNamespace(name=name), stats=stats, health=SinkHealth(name),
                           dead_letters=SimpleNamespace(truncated=4))


def test_the_workers_metrics_parse_back_with_their_names_and_labels():
    sinks = [_sink("requests"), _sink("spans")]
    judge = SimpleNamespace(health=SimpleNamespace(errors=0), skipped={"hub.rollups": 7})
    ctx = ApiContext(store=None, metrics=lambda: metric_families(
        sinks, judge, {"requests": {0: 3, 1: 4}, "spans": {0: 0}}, {("requests", "email"): 9}, 0.0))

    async def get():
        async with TestClient(TestServer(build_app(ctx))) as client:
            response = await client.get("/metrics")
            return response.status, response.headers["Content-Type"], await response.text()

    status, content_type, text = asyncio.run(get())
    assert status == 200 and content_type.startswith("text/plain; version=0.0.4")
    assert_help_and_type_for_every_family(text)
    got = parsed(text)
    dlq = {(s.labels["sink"], s.labels["reason"]): s.value for s in got["hub_dlq_records"][2]}
    assert dlq[("requests", HOSTILE)] == 2 and dlq[("spans", "not JSON")] == 1
    assert {(s.labels["sink"], s.value) for s in got["hub_sink_lag"][2]} == {("requests", 7), ("spans", 0)}
    assert got["hub_sink_lag"][0] == "gauge" and got["hub_sink_stalled_seconds"][0] == "gauge"
    steps = {(s.labels["sink"], s.labels["step"]) for s in got["hub_sink_step_seconds"][2]}
    assert ("requests", "decode") in steps and ("spans", "insert") in steps
    assert [s.value for s in got["hub_dlq_truncated"][2]] == [4]
    assert [(s.labels, s.value) for s in got["hub_redactions"][2]] == [({"source": "requests", "rule": "email"}, 9)]
    assert [(s.labels, s.value) for s in got["hub_judge_skipped_records"][2]] == [({"topic": "hub.rollups"}, 7)]


def test_the_gateways_metrics_parse_back_with_their_names_and_labels():
    config = parse_config({"gateway": {"name": "gw-test", "listen": "127.0.0.1:0"},
                           "routes": [{"path": "/api/{rest*}", "backend": "primary"}],
                           "backends": {"primary": {"url": "http://127.0.0.1:9"}}})
    gateway = Gateway(config, emit_leg=lambda leg, **env: None, emit_pair=lambda key, value: None)
    gateway.counters["requests"] = 3
    gateway.outcomes[HOSTILE] = 2
    gateway._emitters.append(SimpleNamespace(topic="hub.requests", stats=lambda: {"sent": 5, "buffered": 1}))
    text = exposition(gateway.metric_families()).decode()
    assert_help_and_type_for_every_family(text)
    got = parsed(text)
    assert got["hub_gateway_requests"][0] == "counter"
    assert [(s.name, s.labels, s.value) for s in got["hub_gateway_requests"][2]] == [
        ("hub_gateway_requests_total", {"gateway": "gw-test"}, 3)]
    assert [(s.name, s.labels["outcome"]) for s in got["hub_gateway_pairs_by_outcome"][2]] == [
        ("hub_gateway_pairs_by_outcome_total", HOSTILE)]
    assert got["hub_gateway_bulkhead_queued"][0] == "gauge"
    assert [s.labels for s in got["hub_gateway_emitter_sent"][2]] == [{"gateway": "gw-test", "topic": "hub.requests"}]
    assert 'hub_gateway_requests_total{gateway="gw-test"} 3' in text
    assert 'hub_gateway_pairs_total{gateway="gw-test"} 0' in text
