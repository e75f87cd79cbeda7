"""The gateway through the whole hub: real loopback backends, the gateway emitting to the real broker,
a real worker process storing into ClickHouse, and the answers read back with SQL from the worker.

- shadowing: one stored pair per shadowed GET, the one real difference on the one route, no noise
  reported as real, no POST shadowed, and the primary, shadow and secondary legs stored under the
  request's correlation id;
- chaining: gateway A forwards to gateway B, which forwards to the service; both hops store their
  leg under one correlation id, and B's leg names the chain it came through (source
  ``/hub-gateway/A/B``); a loop between gateways is refused instead of recursing.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid

import aiohttp
import pytest

from hub.gateway.config import parse_config
from hub.gateway.proxy import Gateway
from hub.testing import WorkerProcess
from tests.integration.test_gateway import Backends, backends, load  # noqa: F401 (backends: the fixture)

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse, pytest.mark.slow]


def emit_to(worker: WorkerProcess, bootstrap: str) -> dict:
    """The gateway's ``emit:`` section: the worker's broker and topics."""
    return {"bootstrap": bootstrap, "requests_topic": worker.settings.topic_requests,
            "pairs_topic": worker.settings.topic_pairs}


def sent_by(gateway: Gateway) -> int:
    """Events the gateway's emitters had acknowledged by the broker (after ``close``)."""
    return sum(e.stats()["sent"] for e in gateway._emitters)


def test_shadowed_gets_become_one_stored_pair_each_with_only_the_real_difference(
        backends, kafka_bootstrap, tmp_path):
    v1 = backends.add("v1")                    # the primary version
    v2 = backends.add("v2", total_extra=7)     # the shadow: a different total on /orders only
    v1b = backends.add("v1b")                  # the secondary: differs from v1 only in generated_at
    with WorkerProcess.start(tmp_path / "home", kafka_bootstrap) as worker:
        name = "gw-pairs"  # the worker has a store of its own; a random suffix could read as an id
        config = parse_config({
            "gateway": {"name": name, "listen": "127.0.0.1:0"},
            "backends": {"v1": {"url": v1}, "v2": {"url": v2}, "v1b": {"url": v1b}},
            "routes": [
                {"path": "/patients/{id}", "methods": ["GET", "POST"], "backend": "v1",
                 "shadow": {"backend": "v2", "percent": 30, "secondary": "v1b"}},
                {"path": "/orders/{id}", "backend": "v1",
                 "shadow": {"backend": "v2", "percent": 30, "secondary": "v1b"}}],
            "bulkhead": {"max_concurrent": 16, "max_queue": 100_000},
            # the machine is shared: keep latency out of this comparison of bodies
            "comparison": {"latency_regression_factor": 100, "latency_regression_slack_ms": 5000},
            "emit": emit_to(worker, kafka_bootstrap)})
        n_patients, n_orders, n_posts = 200, 120, 60
        requests = [("GET", f"/patients/{i}") for i in range(n_patients)] + \
                   [("GET", f"/orders/{i}?expand=lines") for i in range(n_orders)] + \
                   [("POST", f"/patients/{i}") for i in range(n_posts)]
        random.Random(5).shuffle(requests)

        async def run():
            gw = Gateway(config)
            host, port = await gw.start()
            try:
                await load(f"http://{host}:{port}", requests, concurrency=8)
                await gw.drain()
            finally:
                await gw.close()  # flushes the emitters
            return gw

        gw = asyncio.run(run())
        stats = gw.stats()
        shadowed = {"/patients/{id}": n_patients * 30 // 100, "/orders/{id}": n_orders * 30 // 100}
        n_pairs = sum(shadowed.values())
        n_legs = len(requests) + 2 * n_pairs  # a primary per request; shadow and secondary per shadowed one
        assert stats["shadow_sent"] == n_pairs and stats["shadow_dropped"] == 0
        assert sent_by(gw) == n_legs + n_pairs

        assert worker.wait_for("SELECT count() FROM hub.requests", n_legs, timeout=120) == n_legs
        assert worker.wait_for("SELECT count() FROM hub.shadow_pairs", n_pairs, timeout=120) == n_pairs
        time.sleep(1.5)  # a pair stored twice would show now

        # exactly one pair per shadowed GET, per route; never a POST
        assert worker.sql("SELECT count(), uniqExact(pair_id), uniqExact(correlation_id) "
                          "FROM hub.shadow_pairs") == [[n_pairs, n_pairs, n_pairs]]
        assert dict(map(tuple, worker.sql("SELECT route, count() FROM hub.shadow_pairs GROUP BY route"))) == shadowed
        assert worker.sql("SELECT DISTINCT method FROM hub.shadow_pairs") == [["GET"]]
        assert worker.sql("SELECT count() FROM hub.requests WHERE leg = 'shadow' AND method != 'GET'") == [[0]]
        assert worker.sql("SELECT count() FROM hub.requests WHERE method = 'POST'") == [[n_posts]]

        # the one real difference, on the one route; generated_at is noise and never reported as real
        rows = worker.sql("SELECT route, outcome, noise, differing_fields, noise_fields, count() "
                          "FROM hub.shadow_pairs GROUP BY ALL ORDER BY route")
        assert rows == [["/orders/{id}", "body_mismatch", False, ["total"], ["generated_at"], shadowed["/orders/{id}"]],
                        ["/patients/{id}", "match", True, [], ["generated_at"], shadowed["/patients/{id}"]]]
        assert worker.sql("SELECT count() FROM hub.shadow_pairs "
                          "WHERE hasAny(differing_fields, noise_fields) OR has(differing_fields, 'generated_at')") == [[0]]
        assert worker.sql("SELECT primary_backend, shadow_backend, secondary_backend, count() FROM hub.shadow_pairs "
                          "GROUP BY ALL") == [["v1", "v2", "v1b", n_pairs]]

        # every pair's request: its primary, shadow and secondary legs stored under its correlation id,
        # and the pair agrees with the stored legs
        legs = worker.sql(
            "SELECT legs, count() FROM (SELECT correlation_id, arraySort(groupArray((leg, backend, method))) AS legs "
            "FROM hub.requests WHERE correlation_id IN (SELECT correlation_id FROM hub.shadow_pairs) "
            "GROUP BY correlation_id) GROUP BY legs")
        assert legs == [[[["primary", "v1", "GET"], ["shadow", "v1b", "GET"], ["shadow", "v2", "GET"]], n_pairs]]
        agree = worker.sql(
            "SELECT count() FROM hub.shadow_pairs AS p "
            "INNER JOIN (SELECT correlation_id, "
            "  anyIf(status, leg = 'primary') AS ps, anyIf(latency_ms, leg = 'primary') AS pl, "
            "  anyIf(status, leg = 'shadow' AND backend = 'v2') AS ss, "
            "  anyIf(latency_ms, leg = 'shadow' AND backend = 'v2') AS sl "
            "  FROM hub.requests GROUP BY correlation_id) AS r ON r.correlation_id = p.correlation_id "
            "WHERE p.primary_status = r.ps AND p.shadow_status = r.ss "
            "AND abs(p.latency_primary_ms - r.pl) < 0.01 AND abs(p.latency_shadow_ms - r.sl) < 0.01")
        assert agree == [[n_pairs]]
        # requests that were not shadowed have their primary leg only
        assert worker.sql("SELECT count() FROM (SELECT correlation_id FROM hub.requests GROUP BY correlation_id "
                          "HAVING count() = 1 AND any(leg) = 'primary')") == [[len(requests) - n_pairs]]
        # the gateway paired its own legs: the stream agent added no pair of them
        assert worker.sql("SELECT DISTINCT source FROM hub.shadow_pairs") == [[f"/hub-gateway/{name}"]]


def test_a_chain_of_two_gateways_stores_both_hops_under_one_correlation_id_and_names_the_chain(
        backends, kafka_bootstrap, tmp_path):
    from hub.testing import free_port

    svc = backends.add("svc")
    port_a, port_b = free_port(), free_port()
    suffix = uuid.uuid4().hex[:6]
    a_name, b_name = "edge-a", "edge-b"  # the worker has a store of its own; a random suffix could read as an id
    experiment = f"chain-{suffix}"
    secret = uuid.uuid4().hex  # the chain's shared secret: each gateway trusts the chain headers of the other
    with WorkerProcess.start(tmp_path / "home", kafka_bootstrap) as worker:
        emit = emit_to(worker, kafka_bootstrap)
        config_a = parse_config({
            # A's experiment comes from its configuration and travels on to B with the request
            "gateway": {"name": a_name, "listen": f"127.0.0.1:{port_a}", "experiment_id": experiment,
                        "trust": {"secret": secret}},
            "backends": {"b": {"url": f"http://127.0.0.1:{port_b}", "kind": "gateway"}},
            "routes": [{"path": "/patients/{id}", "backend": "b"}, {"path": "/loop/{id}", "backend": "b"}],
            "emit": emit})
        config_b = parse_config({
            "gateway": {"name": b_name, "listen": f"127.0.0.1:{port_b}", "trust": {"secret": secret}},
            "backends": {"svc": {"url": svc}, "a": {"url": f"http://127.0.0.1:{port_a}", "kind": "gateway"}},
            "routes": [{"path": "/patients/{id}", "backend": "svc"}, {"path": "/loop/{id}", "backend": "a"}],
            "emit": emit})
        answers = {}

        async def run():
            a, b = Gateway(config_a), Gateway(config_b)
            await b.start()
            await a.start()
            try:
                async with aiohttp.ClientSession() as s:
                    for i in range(20):
                        async with s.get(f"http://127.0.0.1:{port_a}/patients/{i}") as r:
                            answers[f"a{i}"] = (r.status, (await r.json())["id"])
                    for i in range(5):
                        async with s.get(f"http://127.0.0.1:{port_b}/patients/{100 + i}") as r:
                            answers[f"b{i}"] = (r.status, (await r.json())["id"])
                    # a forged, malformed chain header is ignored: the request is a fresh one at A
                    async with s.get(f"http://127.0.0.1:{port_a}/patients/200",
                                     headers={"X-Hub-Via": "not a gateway!"}) as r:
                        answers["forged"] = (r.status, (await r.json())["id"])
                    # A -> B -> A: A sees itself in the chain and refuses instead of going round
                    async with s.get(f"http://127.0.0.1:{port_a}/loop/1") as r:
                        answers["loop"] = (r.status, await r.text())
            finally:
                await a.close()
                await b.close()
            return a.stats(), b.stats()

        stats_a, stats_b = asyncio.run(run())
        # the responses arrived through both hops
        assert [answers[f"a{i}"] for i in range(20)] == [(200, str(i)) for i in range(20)]
        assert [answers[f"b{i}"] for i in range(5)] == [(200, str(100 + i)) for i in range(5)]
        assert answers["forged"] == (200, "200")
        assert answers["loop"][0] == 508 and "loop detected" in answers["loop"][1]
        assert stats_a["loops"] == 1 and stats_a["chained"] == 0  # the loop request came back to A, refused
        assert stats_b["chained"] == 20 + 1 + 1 and stats_b["loops"] == 0

        n_legs = 2 * 21 + 5 + 2
        assert worker.wait_for("SELECT count() FROM hub.requests", n_legs, timeout=120) == n_legs
        time.sleep(1.0)
        assert worker.sql("SELECT count() FROM hub.requests") == [[n_legs]]

        # each request through A: one leg per hop under its correlation id, B's naming the chain A/B
        chains = worker.sql(
            "SELECT hops, count() FROM (SELECT correlation_id, "
            "  arraySort(groupArray((gateway, backend, source, status, experiment_id))) AS hops "
            "  FROM hub.requests WHERE route = '/patients/{id}' GROUP BY correlation_id) GROUP BY hops ORDER BY hops")
        through_a = [[a_name, "b", f"/hub-gateway/{a_name}", 200, experiment],
                     [b_name, "svc", f"/hub-gateway/{a_name}/{b_name}", 200, experiment]]
        direct_b = [[b_name, "svc", f"/hub-gateway/{b_name}", 200, ""]]
        assert sorted(map(tuple, chains)) == sorted([(through_a, 21), (direct_b, 5)])
        # the service saw the correlation ids that the legs were stored under
        stored = {r[0] for r in worker.sql("SELECT DISTINCT correlation_id FROM hub.requests "
                                           "WHERE route = '/patients/{id}'")}
        assert {h[2] for h in backends.hits["svc"]} == stored and len(stored) == 26
        # the outer hop encloses the inner one: A's leg lasted at least as long as B's
        assert worker.sql(
            "SELECT countIf(a_ms >= b_ms), count() FROM (SELECT correlation_id, "
            f"  anyIf(latency_ms, gateway = '{a_name}') AS a_ms, anyIf(latency_ms, gateway = '{b_name}') AS b_ms "
            f"  FROM hub.requests WHERE route = '/patients/{{id}}' GROUP BY correlation_id HAVING count() = 2)") \
            == [[21, 21]]
        # the loop: A forwarded to B, B back to A, which refused; both hops stored the refusal
        assert sorted(map(tuple, worker.sql(
            "SELECT gateway, backend, source, status FROM hub.requests WHERE route = '/loop/{id}'"))) == [
            (a_name, "b", f"/hub-gateway/{a_name}", 508), (b_name, "a", f"/hub-gateway/{a_name}/{b_name}", 508)]
        # gateway legs are paired by the gateway itself, not by the stream agent: no pairs here
        assert worker.sql("SELECT count() FROM hub.shadow_pairs") == [[0]]
