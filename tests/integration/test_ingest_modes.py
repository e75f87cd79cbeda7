"""POST /v1/events on the hub's own HTTP app (``hub.api.server.build_app``), with a real Kafka broker
behind it: binary mode treats an attribute exactly as structured mode does, and the request body has
one limit whether its length is declared or it is sent in chunks."""

from __future__ import annotations

import asyncio
import json

import pytest
from aiohttp.test_utils import TestClient, TestServer

from hub.api.server import ApiContext, build_app
from hub.records.generate import generate_request_legs
from tests.integration.test_sink_exactly_once import consume_all

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse]

STRUCTURED = {"Content-Type": "application/cloudevents+json"}
LIMIT = 8 * 1024 * 1024


def _run(settings, store, requests: list[tuple[bytes, dict]]) -> list[tuple[int, dict]]:
    """Each request (body or an async generator of chunks, headers) posted in turn: (status, answer)."""
    async def go():
        app = build_app(ApiContext(store=store, extra={"settings": settings}))
        async with TestClient(TestServer(app)) as client:
            answers = []
            for body, headers in requests:
                response = await client.post("/v1/events", data=body() if callable(body) else body,
                                             headers=headers)
                answers.append((response.status, await response.json()))
            return answers
    return asyncio.run(go())


def _binary(event: dict, **extra_headers) -> tuple[bytes, dict]:
    headers = {"Content-Type": "application/json", "ce-specversion": "1.0", "ce-id": event["id"],
               "ce-source": event["source"], "ce-type": event["type"], **extra_headers}
    return json.dumps(event["data"]).encode(), headers


def test_an_unknown_attribute_is_refused_alike_in_binary_and_structured_mode(hub_settings, store, kafka_bootstrap,
                                                                              make_topic):
    topic = make_topic(partitions=1)
    settings = hub_settings.with_overrides(kafka_bootstrap=kafka_bootstrap, topic_requests=topic)
    events = [json.loads(v) for _, v in generate_request_legs(4, seed=21)]
    answers = _run(settings, store, [
        (json.dumps(dict(events[0], bogus="x")).encode(), STRUCTURED),
        _binary(events[1], **{"ce-bogus": "x"}),
        _binary(events[2], **{"CE-Experimentid": "exp-1"}),  # a known attribute, in any case: accepted
        (json.dumps(dict(events[3], experimentid="exp-1")).encode(), STRUCTURED),
    ])
    unknown = "schema: Object contains unknown field bogus"
    assert [(status, a["accepted"], [r["reason"] for r in a["refused"]]) for status, a in answers] == [
        (400, 0, [unknown]), (400, 0, [unknown]), (202, 1, []), (202, 1, [])]
    stored = [json.loads(r.value) for r in consume_all(kafka_bootstrap, topic, 1, 2)]
    assert [(e["id"], e["experimentid"]) for e in stored] == [(events[2]["id"], "exp-1"), (events[3]["id"], "exp-1")]


def test_a_lone_surrogate_in_binary_mode_data_is_refused_with_a_true_reason(hub_settings, store, kafka_bootstrap):
    settings = hub_settings.with_overrides(kafka_bootstrap=kafka_bootstrap)
    [(_, value)] = list(generate_request_legs(1, seed=22))
    event = json.loads(value)
    body, headers = _binary(dict(event, data=dict(event["data"], error="\ud800")))
    [(status, answer)] = _run(settings, store, [(body, headers)])
    assert status == 400
    assert answer["refused"][0]["reason"].startswith(
        "not JSON: JSON is malformed: invalid utf-16 surrogate pair: \\ud800 is not followed by a low surrogate")


def test_one_body_limit_for_declared_and_chunked_requests(hub_settings, store, kafka_bootstrap):
    settings = hub_settings.with_overrides(kafka_bootstrap=kafka_bootstrap)
    over = b"[" + b" " * LIMIT + b"]"

    async def chunks():
        for i in range(0, len(over), 1 << 20):
            yield over[i:i + (1 << 20)]

    answers = _run(settings, store, [(over, {"Content-Type": "application/cloudevents-batch+json"}),
                                     (chunks, {"Content-Type": "application/cloudevents-batch+json"})])
    error = f"request body over {LIMIT} bytes, the largest POST /v1/events takes: send the events in several requests"
    assert answers == [(413, {"error": error}), (413, {"error": error})]
