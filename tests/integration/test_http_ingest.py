"""CloudEvents over HTTP: structured, batch and binary modes, with a token, into the store."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
import uuid

import pytest

from hub.records.generate import generate_request_legs
from hub.testing import WorkerProcess

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse, pytest.mark.slow]


def post(url, body: bytes, headers: dict):
    request = urllib.request.Request(url, data=body, method="POST", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_cloudevents_over_http_in_every_mode_with_accepted_and_refused_reported(tmp_path, kafka_bootstrap):
    with WorkerProcess.start(tmp_path / "home", kafka_bootstrap, HUB_INGEST_TOKEN="ingest-secret") as worker:
        url = worker.settings.http_url + "/v1/events"
        auth = {"Authorization": "Bearer ingest-secret"}
        events = [json.loads(v) for _, v in generate_request_legs(6, seed=9)]

        status, answer = post(url, json.dumps(events[0]).encode(),
                              {"Content-Type": "application/cloudevents+json"})
        assert status == 401 and "token" in answer["error"]

        status, answer = post(url, json.dumps(events[0]).encode(),
                              {**auth, "Content-Type": "application/cloudevents+json"})
        assert (status, answer) == (202, {"accepted": 1, "refused": []})

        broken = dict(events[2], data=dict(events[2]["data"], status="teapot"))
        batch = [events[1], broken, events[3], "not an event"]
        status, answer = post(url, json.dumps(batch).encode(),
                              {**auth, "Content-Type": "application/cloudevents-batch+json"})
        assert status == 207 and answer["accepted"] == 2
        assert [(r["index"], r["reason"].split(":")[0]) for r in answer["refused"]] == [(1, "schema"), (3, "not an event")]
        assert answer["refused"][0]["id"] == broken["id"]

        binary = events[4]
        headers = {**auth, "Content-Type": "application/json", "ce-specversion": "1.0", "ce-id": binary["id"],
                   "ce-source": binary["source"], "ce-type": binary["type"], "ce-experimentid": "exp-http"}
        status, answer = post(url, json.dumps(binary["data"]).encode(), headers)
        assert (status, answer["accepted"]) == (202, 1)

        status, answer = post(url, b"hello", {**auth, "Content-Type": "text/plain"})
        assert status == 400 and "unsupported content type" in answer["refused"][0]["reason"]

        assert worker.wait_for("SELECT count() FROM hub.requests", 4, timeout=60) == 4
        ids = {r[0] for r in worker.sql("SELECT toString(event_id) FROM hub.requests")}
        assert ids == {str(uuid.UUID(e["id"])) for e in (events[0], events[1], events[3], events[4])}
        assert worker.sql(f"SELECT experiment_id FROM hub.requests WHERE event_id = '{binary['id']}'") == [["exp-http"]]
