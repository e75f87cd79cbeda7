"""POST /v1/events on the hub's own HTTP app: the answer about a refused event never repeats the patient
data in it. The reason (a decoder echoes the offending value) and the event's id are redacted as a
dead letter's reason and key are."""

from __future__ import annotations

import asyncio
import json

import pytest
from aiohttp.test_utils import TestClient, TestServer

from hub.api.server import ApiContext, build_app
from hub.records.generate import generate_request_legs

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse]

STRUCTURED = {"Content-Type": "application/cloudevents+json"}
SEEDS = ("Ottoline", "Marsh", "004417829", "512-44-8731")


def _post(settings, store, body: bytes, headers: dict) -> tuple[int, dict, str]:
    async def go():
        app = build_app(ApiContext(store=store, extra={"settings": settings}))
        async with TestClient(TestServer(app)) as client:
            response = await client.post("/v1/events", data=body, headers=headers)
            text = await response.text()
            return response.status, json.loads(text), text
    return asyncio.run(go())


def test_a_refused_event_answer_carries_no_patient_data(hub_settings, store, kafka_bootstrap, make_topic):
    settings = hub_settings.with_overrides(kafka_bootstrap=kafka_bootstrap, topic_requests=make_topic(partitions=1))
    event = json.loads(next(iter(generate_request_legs(1, seed=17)))[1])
    event["data"]["leg"] = "Ottoline Marsh MRN 004417829"
    status, answer, text = _post(settings, store, json.dumps(event).encode(), STRUCTURED)
    assert status == 400 and answer["accepted"] == 0
    reason = answer["refused"][0]["reason"]
    assert reason.startswith("schema:") and "[REDACTED:value]" in reason, reason
    assert answer["refused"][0]["id"] == event["id"]  # an id that is an id is kept: the client finds its event
    assert not [s for s in SEEDS if s in text], text

    event = json.loads(next(iter(generate_request_legs(1, seed=18)))[1])
    event["id"], event["data"]["status"] = "SSN-512-44-8731", "Ottoline Marsh"
    status, answer, text = _post(settings, store, json.dumps(event).encode(), STRUCTURED)
    assert status == 400 and answer["refused"][0]["id"].startswith("[REDACTED:")
    assert not [s for s in SEEDS if s in text], text
