"""The judge's decoding of its topics never raises anything but a refusal, and the judge's own
errors show in its health (the worker adds them to /health and /ready)."""

from __future__ import annotations

import json

import pytest

from hub.abort.rollup import BadRollup, Cell, decode_rollup, encode_rollups
from hub.abort.runtime import JudgeRuntime, safe_record
from hub.settings import load_settings

DEEP = b"[" * 5000 + b"]" * 5000

GARBAGE = [DEEP, b"{" * 3000, b"[1]", b"{}", b"null", b"1", b'"x"', b"\xff\xfe", b"", b"not json",
           json.dumps({"token": "t", "experiment_id": 5, "cells": []}).encode(),
           json.dumps({"token": "t", "experiment_id": "x", "cells": {"a": 1}}).encode(),
           json.dumps({"token": "t", "experiment_id": "x", "cells": [["a", "b"]]}).encode(),
           json.dumps({"token": "t", "experiment_id": "x", "cells": [[1, "requests", "", "", "", "", "", 1, 0,
                                                                      {"x": 1}, []]]}).encode(),
           json.dumps({"token": "t", "experiment_id": "x", "cells": [[1, "requests", "", "", "", "", "", "1", 0,
                                                                      {}, []]]}).encode(),
           json.dumps({"token": "t", "experiment_id": "x", "cells": [[1, "requests", "", "", "", "", "", 1, 0,
                                                                      {}, [], {"r": "no"}]]}).encode(),
           json.dumps({"token": "t", "experiment_id": "x", "cells": [[1, "requests", "", "", "", "", "", 1, 0,
                                                                      {"100000": 1}, []]]}).encode(),
           json.dumps({"token": "t", "experiment_id": "x", "cells": [[-5, "requests", "", "", "", "", "", 1, 0,
                                                                      {}, []]]}).encode(),
           json.dumps({"token": "t", "experiment_id": "x", "cells": [[1, "requests", "", "", "", "", "", 1, 2,
                                                                      {}, []]]}).encode()]


@pytest.mark.parametrize("value", GARBAGE)
def test_decode_rollup_refuses_anything_but_a_rollup(value):
    with pytest.raises(BadRollup):
        decode_rollup(value)


def test_a_rollup_round_trips():
    [(_, value)] = encode_rollups("tok", {"exp": [Cell(5, "requests", route="/a", count=2, errors=1)]})
    token, experiment, [cell] = decode_rollup(value)
    assert (token, experiment, cell.second, cell.count, cell.errors, cell.route) == ("tok", "exp", 5, 2, 1, "/a")


@pytest.mark.parametrize("value", [DEEP, b"[1, 2]", b"", b"\xff", b"x" * 100, b'"a"'])
def test_safe_record_says_why_instead_of_raising(value):
    assert isinstance(safe_record(value, 50, 64), str)


def test_safe_record_returns_an_object():
    assert safe_record(b'{"kind": "alert"}', 50, 64) == {"kind": "alert"}


class NoExperiments:
    states: dict = {}

    def wait_until_known(self, *args, **kwargs):
        return None


def runtime(tmp_path):
    settings = load_settings({"HUB_HOME": str(tmp_path)})
    judge = JudgeRuntime(settings, NoExperiments())
    judge._rebuilt.update(range(64))  # no broker here: the partitions count as rebuilt
    return judge


def test_garbage_rollups_are_skipped_and_counted(tmp_path):
    judge = runtime(tmp_path)
    assert judge.process([(0, i, v) for i, v in enumerate(GARBAGE)]) == 0
    assert judge.skipped == {judge.settings.topic_rollups: len(GARBAGE)}
    assert judge.health.state == "ok" and judge.health.problems() == []


def test_an_error_of_the_judge_shows_in_its_health_until_a_rollup_goes_through(tmp_path):
    judge = runtime(tmp_path)

    def broken(value):
        raise RuntimeError("evaluation failed")

    good = judge.judge.add_rollup
    judge.judge.add_rollup = broken
    assert judge.process([(3, 7, b"{}")]) == 0  # never raises
    [problem] = judge.health.problems()
    assert (problem["sink"], problem["state"], problem["partition"]) == ("judge", "stalled", 3)
    assert "evaluation failed" in problem["error"] and judge.health.errors == 1
    judge.judge.add_rollup = good
    [(_, value)] = encode_rollups("tok", {"exp": [Cell(5, "requests", count=1)]})
    judge.process([(3, 8, value)])
    assert judge.health.problems() == []


def test_a_crash_of_the_judge_agent_is_a_problem(tmp_path):
    judge = runtime(tmp_path)
    judge.health.crash(RuntimeError("agent stopped"))
    [problem] = judge.health.problems()
    assert (problem["sink"], problem["state"], problem["error"]) == ("judge", "crashed", "agent stopped")


def test_a_crashed_or_erring_judge_makes_health_degraded_and_ready_fail(tmp_path):
    import asyncio
    from types import SimpleNamespace

    from aiohttp.test_utils import TestClient, TestServer

    from hub.api.server import ApiContext, build_app
    from hub.storage.sink import SinkHealth
    from streams.worker import health_report

    judge = runtime(tmp_path)
    sinks = [SimpleNamespace(spec=SimpleNamespace(name="requests"), health=SinkHealth("requests"))]
    lagging: dict = {}

    def health():
        return health_report(sinks, judge, {"requests": {0: 0}}, lagging, 1000, 0.0)

    async def get(path):
        app = build_app(ApiContext(store=None, is_ready=lambda: True, health=health))
        async with TestClient(TestServer(app)) as client:
            response = await client.get(path)
            return response.status, await response.json()

    assert asyncio.run(get("/ready")) == (200, {"ready": True})
    judge.health.crash(RuntimeError("agent stopped"))
    status, body = asyncio.run(get("/ready"))
    assert status == 503 and [(p["sink"], p["state"]) for p in body["problems"]] == [("judge", "crashed")]
    status, body = asyncio.run(get("/health"))
    assert status == 200 and body["status"] == "degraded" and body["judge"]["state"] == "crashed"
    assert body["problems"][0]["error"] == "agent stopped"
