"""A fault recorded a moment after it was put in place keeps the time it happened: ``--at`` on
``hub inject``/``hub experiment remove`` and ``at`` in the API's bodies are recorded as given, and
a stated time in the future or before the experiment's last event is refused with one line, never
moved (the real broker's experiment log; the API without a worker)."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import subprocess
import sys
import textwrap
import uuid

import pytest
from aiohttp.test_utils import TestClient, TestServer

from hub.api.server import ApiContext, build_app
from hub.settings import load_settings
from hub.testing import isolated_env

pytestmark = pytest.mark.kafka

DEFINITION = textwrap.dedent("""
    id: {id}
    title: A fault recorded late
    scenario: Stop a replica, record it afterwards.
    hypothesis: The record keeps the time it happened.
    expected_outcome: Times as stated.
    steady_state:
      - {{name: errors, sli: error_rate, source: requests, tolerance: {{max: 0.2}}}}
    environment: {{name: staging, kind: non-live, risk: low}}
    targets: {{gateways: [gw-at]}}
""")


def parse(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_stated_times_are_recorded_as_given_and_refused_when_impossible(tmp_path, kafka_bootstrap):
    env = isolated_env(tmp_path / "home", kafka_bootstrap)
    experiment = f"exp-{uuid.uuid4().hex[:6]}"
    definition = tmp_path / "experiment.yaml"
    definition.write_text(DEFINITION.format(id=experiment))

    def hub(*args, check=True):
        result = subprocess.run([sys.executable, "-m", "hub.cli.main", *args], env=env, capture_output=True,
                                text=True, timeout=120, stdin=subprocess.DEVNULL)
        assert not check or result.returncode == 0, (args, result.stdout, result.stderr)
        return result

    def show() -> dict:
        return json.loads(hub("experiment", "show", experiment, "--json").stdout)

    hub("experiment", "create", str(definition))
    hub("experiment", "start", experiment, "--force")
    started = max(parse(e["time"]) for e in map(json.loads, hub("experiment", "history", experiment, "--json")
                                                 .stdout.splitlines()))
    # the replica was stopped 20 s before this command, after the start: wait until that is possible
    while dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=20) <= started:
        asyncio.run(asyncio.sleep(0.5))
    before = dt.datetime.now(dt.timezone.utc)
    hub("inject", experiment, "--action", "stop-instance", "--target", "db-replica", "--fault-id", "late",
        "--at=-20s")
    [fault] = [f for f in show()["faults"] if f["fault_id"] == "late"]
    start = parse(fault["start"])
    assert before - dt.timedelta(seconds=21) <= start <= dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=19)

    # before the experiment's last event (the injection just recorded), or ahead of now: refused, nothing written
    version = show()["version"]
    earlier = (start - dt.timedelta(seconds=5)).isoformat()
    refused = hub("experiment", "remove", experiment, "late", "--at", earlier, check=False)
    assert refused.returncode == 2 and "before experiment" in refused.stderr and "last event" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1
    ahead = (dt.datetime.now(dt.timezone.utc) + dt.timedelta(minutes=5)).isoformat()
    refused = hub("experiment", "remove", experiment, "late", "--at", ahead, check=False)
    assert refused.returncode == 2 and "in the future" in refused.stderr
    refused = hub("experiment", "remove", experiment, "late", "--at", "soon", check=False)
    assert refused.returncode == 2 and "--at expects" in refused.stderr
    assert show()["version"] == version

    # the API: `at` in the body, recorded as given; an impossible one is a 400 naming why
    settings = load_settings(env)
    app = build_app(ApiContext(store=None, extra={"settings": settings, "registry": None}))
    removed_at = start + dt.timedelta(seconds=3)

    async def go():
        async with TestClient(TestServer(app)) as client:
            bad = await client.post(f"/v1/experiments/{experiment}/faults/late/remove",
                                    json={"at": (start - dt.timedelta(seconds=1)).isoformat()})
            garbled = await client.post(f"/v1/experiments/{experiment}/faults/late/remove", json={"at": "noon"})
            ok = await client.post(f"/v1/experiments/{experiment}/faults/late/remove",
                                   json={"at": removed_at.isoformat().replace("+00:00", "Z")})
            return (bad.status, await bad.json()), (garbled.status, await garbled.json()), (ok.status, await ok.text())

    bad, garbled, ok = asyncio.run(go())
    assert bad[0] == 400 and "before experiment" in bad[1]["error"]
    assert garbled[0] == 400 and "ISO 8601" in garbled[1]["error"]
    assert ok[0] == 201, ok[1]
    history = [json.loads(line) for line in hub("experiment", "history", experiment, "--json").stdout.splitlines()]
    [removal] = [e for e in history if e["kind"] == "fault_removed"]
    assert parse(removal["time"]) == removed_at.replace(microsecond=removed_at.microsecond // 1000 * 1000)
