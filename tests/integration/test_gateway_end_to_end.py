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
import yaml

from hub.gateway.config import parse_config
from hub.gateway.proxy import Gateway
from hub.testing import WorkerProcess
from tests.integration.test_gateway import Backends, load

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse, pytest.mark.slow]


@pytest.fixture
def backends():
    b = Backends()
    yield b
    b.close()


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
        name = f"gw-{uuid.uuid4().hex[:6]}"
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
