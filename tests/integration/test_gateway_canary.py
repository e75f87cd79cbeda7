"""``hub canary judge`` end to end with the hub running: canary traffic through the gateway (a weighted
share to a slower backend on one route, to an identical instance on another), the gateway's legs
stored by a real worker, and the CLI asking the worker (which owns the store) to judge and store
the verdicts. The slow canary is a significant latency regression with its effect size and
confidence; the healthy one is not judged a regression. With the hub stopped, the same command
opens the store itself and finds the same verdicts."""

from __future__ import annotations

import asyncio
import json
import random
import subprocess
import sys
import uuid

import pytest

from hub.gateway.config import parse_config
from hub.gateway.proxy import Gateway
from hub.testing import WorkerProcess
from tests.integration.test_gateway import Backends, backends, load  # noqa: F401 (backends: the fixture)

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse, pytest.mark.slow]


def hub(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "hub.cli.main", *args], env=env, capture_output=True, text=True,
                          timeout=300)


def test_canary_judge_with_the_hub_running_flags_the_slow_canary_and_passes_the_healthy_one(
        backends, kafka_bootstrap, tmp_path):
    v1 = backends.add("v1", delay=0.005)         # the baseline
    slow = backends.add("v2", delay=0.060)       # a canary that is 55 ms slower
    same = backends.add("v1c", delay=0.005)      # a canary that behaves as the baseline
    experiment = f"canary-{uuid.uuid4().hex[:8]}"
    n_slow_route, n_healthy_route = 100, 600
    with WorkerProcess.start(tmp_path / "home", kafka_bootstrap) as worker:
        config = parse_config({
            "gateway": {"name": "edge-canary", "listen": "127.0.0.1:0", "experiment_id": experiment},
            "backends": {"v1": {"url": v1}, "v2": {"url": slow}, "v1c": {"url": same}},
            "routes": [{"path": "/patients/{id}", "backend": "v1", "canary": {"backend": "v2", "weight": 0.5}},
                       {"path": "/orders/{id}", "backend": "v1", "canary": {"backend": "v1c", "weight": 0.5}}],
            "emit": {"bootstrap": kafka_bootstrap, "requests_topic": worker.settings.topic_requests,
                     "pairs_topic": worker.settings.topic_pairs}})
        requests = [("GET", f"/patients/{i}") for i in range(n_slow_route)] + \
                   [("GET", f"/orders/{i}") for i in range(n_healthy_route)]
        random.Random(9).shuffle(requests)  # both routes, canary and baseline legs interleaved in time

        async def run():
            gw = Gateway(config)
            host, port = await gw.start()
            try:
                await load(f"http://{host}:{port}", requests, concurrency=8)
            finally:
                await gw.close()
            return gw.stats()

        stats = asyncio.run(run())
        assert stats["canary"] == n_slow_route // 2 + n_healthy_route // 2
        total = len(requests)
        assert worker.wait_for(f"SELECT count() FROM hub.requests WHERE experiment_id = '{experiment}'", total,
                               timeout=120) == total

        # the worker owns the store: this command can only succeed through its HTTP endpoint
        result = hub(worker.env, "canary", "judge", experiment)
        assert result.returncode == 0, result.stderr
        print(result.stdout)
        lines = {tuple(line.split()[:2]): line for line in result.stdout.splitlines() if line.startswith("/")}
        slow_line = lines[("/patients/{id}", "latency")]
        words = slow_line.split()
        assert words[2] == "fail" and words[3] == "confidence" and float(words[4]) > 0.999
        assert words[7] == "cliffs_delta" and float(words[8]) > 0.474
        assert lines[("/orders/{id}", "latency")].split()[2] != "fail"
        assert "stored 4 verdict(s) in hub.canary_verdicts" in result.stdout

        verdicts = {(r[0], r[1]): r[2:] for r in worker.sql(
            "SELECT route, metric, verdict, confidence, p_value, effect_size, effect_kind, canary_samples, "
            "baseline_samples, canary_value, baseline_value, canary_backend, baseline_backend "
            f"FROM hub.canary_verdicts WHERE experiment_id = '{experiment}'")}
        assert len(verdicts) == 4
        verdict, confidence, p, effect, kind, n_canary, n_base, canary_ms, base_ms, c_backend, b_backend = \
            verdicts[("/patients/{id}", "latency")]
        # significant (p tiny, confidence near 1) and large (Cliff's delta above Romano's 0.474 for "large";
        # positive: the canary is the slower one)
        assert (verdict, kind, c_backend, b_backend) == ("fail", "cliffs_delta", "v2", "v1")
        assert p < 0.001 and confidence > 0.999 and effect > 0.474
        assert (n_canary, n_base) == (n_slow_route // 2, n_slow_route // 2)
        assert canary_ms >= 60 > base_ms / 2  # the canary's median holds its 60 ms sleep
        healthy = verdicts[("/orders/{id}", "latency")]
        assert healthy[0] in ("pass", "inconclusive") and healthy[9] == "v1c"
        assert healthy[5] == healthy[6] == n_healthy_route // 2
        # nobody erred: no error-rate regression; with 300 legs a side non-inferiority is shown (pass),
        # 50 a side are too few to show it (inconclusive)
        assert verdicts[("/patients/{id}", "error_rate")][0] == "inconclusive"
        assert verdicts[("/orders/{id}", "error_rate")][0] == "pass"

        # the HTTP endpoint itself: judge without storing
        answer = worker.stack.api(f"/v1/experiments/{experiment}/canary-judge", {"store": False, "min_samples": 20})
        assert answer["stored"] == 0 and len(answer["verdicts"]) == 4
        assert worker.sql(f"SELECT count() FROM hub.canary_verdicts WHERE experiment_id = '{experiment}'") == [[4]]

    # with the hub stopped, the command opens the store itself and judges the same legs alike
    result = hub(worker.env, "canary", "judge", experiment, "--json", "--no-store")
    assert result.returncode == 0, result.stderr
    direct = {(v["route"], v["metric"]): v for v in json.loads(result.stdout)}
    through_hub = {(v["route"], v["metric"]): v for v in answer["verdicts"]}
    assert direct.keys() == through_hub.keys()
    for key, v in direct.items():
        assert (v["verdict"], v["canary_samples"], v["baseline_samples"]) == \
            (through_hub[key]["verdict"], through_hub[key]["canary_samples"], through_hub[key]["baseline_samples"])
        assert v["p_value"] == pytest.approx(through_hub[key]["p_value"], rel=1e-9, abs=1e-300)
        assert v["effect_size"] == pytest.approx(through_hub[key]["effect_size"], rel=1e-9)
    stored = hub(worker.env, "sql", f"SELECT count() FROM hub.canary_verdicts WHERE experiment_id = '{experiment}'")
    assert stored.returncode == 0 and stored.stdout.strip() == "4"
