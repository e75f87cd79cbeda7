"""POST /v1/events with input nested far too deeply, in structured, batch and binary modes: the
event is refused with the reason (400, or 207 beside good events), never a 500, and the good
events of the same requests are stored once."""

from __future__ import annotations

import json
import uuid

import pytest

from hub.records.generate import generate_request_legs
from hub.testing import WorkerProcess
from tests.integration.test_http_ingest import post

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse, pytest.mark.slow]

DEPTH = "too deeply nested: > 64 levels"


def nested(levels: int) -> str:
    return "[" * levels + "]" * levels


def test_deep_nesting_is_refused_with_the_reason_in_every_mode(tmp_path, kafka_bootstrap):
    with WorkerProcess.start(tmp_path / "home", kafka_bootstrap) as worker:
        url = worker.settings.http_url + "/v1/events"
        events = [json.loads(v) for _, v in generate_request_legs(6, seed=4)]
        structured = {"Content-Type": "application/cloudevents+json"}
        batch = {"Content-Type": "application/cloudevents-batch+json"}

        # structured mode: one event whose data nests 50,000 levels
        deep_event = json.dumps(dict(events[0], data={"a": 1})).replace('{"a": 1}', '{"a": ' + nested(50_000) + "}")
        status, answer = post(url, deep_event.encode(), structured)
        assert (status, answer) == (400, {"accepted": 0, "refused": [{"index": 0, "reason": DEPTH, "id": None}]})

        # batch mode: a deep event between two good ones is refused alone ...
        somewhat_deep = dict(events[1], data={"a": json.loads(nested(100))})
        body = json.dumps([events[2], somewhat_deep, events[3]]).encode()
        status, answer = post(url, body, batch)
        assert (status, answer) == (207, {"accepted": 2, "refused": [
            {"index": 1, "reason": DEPTH, "id": somewhat_deep["id"]}]})
        # ... and a batch too deep to be split into events at all is refused as a whole
        body = ("[" + json.dumps(events[4]) + "," + nested(50_000) + "]").encode()
        status, answer = post(url, body, batch)
        assert (status, answer) == (400, {"accepted": 0, "refused": [{"index": -1, "reason": DEPTH}]})

        # binary mode: the body is the event's data
        binary = events[5]
        headers = {"Content-Type": "application/json", "ce-specversion": "1.0", "ce-id": binary["id"],
                   "ce-source": binary["source"], "ce-type": binary["type"]}
        status, answer = post(url, ('{"a": ' + nested(50_000) + "}").encode(), headers)
        assert (status, answer) == (400, {"accepted": 0, "refused": [{"index": -1, "reason": DEPTH}]})
        status, answer = post(url, b'{"a": "\xff"}', headers)  # not UTF-8
        assert status == 400 and answer["refused"][0]["reason"].startswith("not JSON")
        status, answer = post(url, json.dumps(binary["data"]).encode(), headers)
        assert (status, answer) == (202, {"accepted": 1, "refused": []})

        # an event time the store could not keep
        future = dict(events[0], data=dict(events[0]["data"], event_time="9999-12-31T23:59:59Z"))
        status, answer = post(url, json.dumps(future).encode(), structured)
        assert status == 400 and answer["refused"][0]["reason"].startswith(
            "timestamp out of range: 9999-12-31T23:59:59.000Z (accepted: from 90 days ago (HUB_TTL_DAYS) to ")

        assert worker.wait_for("SELECT count() FROM hub.requests", 3, timeout=60) == 3
        ids = {r[0] for r in worker.sql("SELECT toString(event_id) FROM hub.requests")}
        assert ids == {str(uuid.UUID(e["id"])) for e in (events[2], events[3], events[5])}
