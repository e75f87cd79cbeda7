"""RequestLegMiddleware around tiny raw ASGI apps, driven in-process (no server, no broker).

Records go to a plain list sink (pure logic), or to a real ``EventEmitter`` whose broker address
is a closed port, to show that a dead broker and a full buffer never reach the request.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import time
import uuid

import msgspec
import pytest

from hub.emit import EventEmitter, RequestLegMiddleware, parse_baggage
from hub.records.request_leg import RequestLeg, RequestLegEvent, new_event
from hub.records.generate import encode_event
from hub.testing import free_port

BODY = b'{"id": 7, "name": "redacted"}'


async def echo_app(scope, receive, send):
    """Reads the whole request body, answers 200 with BODY (in two chunks) and a header."""
    if scope["type"] != "http":
        return
    while True:
        message = await receive()
        if not message.get("more_body"):
            break
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": BODY[:10], "more_body": True})
    await send({"type": "http.response.body", "body": BODY[10:]})


async def failing_app(scope, receive, send):
    raise RuntimeError("database connection refused")


async def not_found_app(scope, receive, send):
    await send({"type": "http.response.start", "status": 404, "headers": []})
    await send({"type": "http.response.body", "body": b""})


def call(app, path="/patients/12345", *, method="GET", query=b"", headers=(), body_chunks=(b"",)):
    """Run one HTTP request through ``app``; returns the messages the app sent."""
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
        "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": query,
        "root_path": "", "headers": [(k.lower().encode(), v.encode()) for k, v in headers],
        "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 8000),
    }
    chunks = list(body_chunks)
    sent = []

    async def receive():
        if chunks:
            body = chunks.pop(0)
            return {"type": "http.request", "body": body, "more_body": bool(chunks)}
        return {"type": "http.disconnect"}

    async def send(message):
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    return sent


def list_sink():
    records: list[tuple[RequestLeg, dict]] = []
    return records, lambda leg, envelope: records.append((leg, envelope))


def wire_roundtrip(leg: RequestLeg, envelope: dict) -> RequestLegEvent:
    """The record as the hub would decode it (validates every field constraint)."""
    return msgspec.json.decode(encode_event(new_event(leg, **envelope)), type=RequestLegEvent)


def route_template(scope):
    if re.fullmatch(r"/patients/\d+", scope["path"]):
        return "/patients/{id}"
    return None


def test_record_fields_and_unchanged_response():
    records, sink = list_sink()
    app = RequestLegMiddleware(echo_app, gateway="edge-eu-1", backend="patients", sink=sink,
                               route_of=route_template)
    plain = call(echo_app, body_chunks=(b"abc", b"defg"))
    wrapped = call(app, method="POST", body_chunks=(b"abc", b"defg"),
                   headers=[("X-Correlation-Id", "corr-1"), ("X-Experiment-Id", "exp-9"),
                            ("X-Experiment-Phase", "injection")])
    assert wrapped == plain  # the client sees exactly what the app sent
    [(leg, envelope)] = records
    assert (leg.correlation_id, leg.leg, leg.gateway, leg.backend) == ("corr-1", "primary", "edge-eu-1", "patients")
    assert (leg.route, leg.method, leg.status) == ("/patients/{id}", "POST", 200)
    assert (leg.request_bytes, leg.response_bytes) == (7, len(BODY))
    assert leg.response_hash == hashlib.sha256(BODY).digest()[:16].hex()
    assert len(leg.response_hash) == 32
    assert (leg.experiment_id, leg.phase, leg.error) == ("exp-9", "injection", "")
    assert 0 <= leg.latency_ms < 5000
    assert leg.event_time.tzinfo is not None
    assert envelope == {"source": "/gateways/edge-eu-1", "experimentid": "exp-9",
                        "experimentphase": "injection"}
    event = wire_roundtrip(leg, envelope)
    assert event.data == leg and event.experimentid == "exp-9"


def test_new_correlation_id_is_added_to_response_and_request():
    seen_headers = []

    async def app(scope, receive, send):
        seen_headers.extend(scope["headers"])
        await echo_app(scope, receive, send)

    records, sink = list_sink()
    sent = call(RequestLegMiddleware(app, gateway="gw", backend="b", sink=sink))
    [(leg, _)] = records
    assert str(uuid.UUID(leg.correlation_id)) == leg.correlation_id
    start = sent[0]
    assert (b"x-correlation-id", leg.correlation_id.encode()) in start["headers"]
    assert (b"content-type", b"application/json") in start["headers"]
    assert (b"x-correlation-id", leg.correlation_id.encode()) in seen_headers
    # a correlation id the client sent is kept and not echoed a second time
    records.clear()
    sent = call(RequestLegMiddleware(echo_app, gateway="gw", backend="b", sink=sink),
                headers=[("x-correlation-id", "abc")])
    assert records[0][0].correlation_id == "abc"
    assert sent[0]["headers"] == [(b"content-type", b"application/json")]


def test_query_strings_never_recorded():
    records, sink = list_sink()
    app = RequestLegMiddleware(echo_app, gateway="gw", backend="b", sink=sink)
    call(app, "/search", query=b"name=Jane+Doe&dob=1970-01-01")
    call(app, "/odd path?name=Jane", query=b"ssn=123")  # a server that left '?' in the path
    call(RequestLegMiddleware(echo_app, gateway="gw", backend="b", sink=sink,
                              route_of=lambda scope: "/search?q={q}"), "/search", query=b"q=Jane")
    routes = [leg.route for leg, _ in records]
    assert routes == ["/search", "/odd%20path", "/search"]
    for leg, envelope in records:
        wire = encode_event(new_event(leg, **envelope))
        assert b"Jane" not in wire and b"1970" not in wire and b"ssn" not in wire
        wire_roundtrip(leg, envelope)


def test_route_falls_back_to_path_and_router_template():
    class FakeRoute:  # what FastAPI leaves in scope["route"]
        path = "/appointments/{appointment_id:int}"
        path_format = "/appointments/{appointment_id}"

    async def routed_app(scope, receive, send):
        scope["route"] = FakeRoute()
        await not_found_app(scope, receive, send)

    records, sink = list_sink()
    call(RequestLegMiddleware(routed_app, gateway="gw", backend="b", sink=sink), "/appointments/5")
    call(RequestLegMiddleware(not_found_app, gateway="gw", backend="b", sink=sink,
                              route_of=route_template), "/other/5")
    assert [(leg.route, leg.status) for leg, _ in records] == [
        ("/appointments/{appointment_id}", 404), ("/other/5", 404)]


def test_app_error_is_reraised_and_recorded_with_status_500():
    records, sink = list_sink()
    app = RequestLegMiddleware(failing_app, gateway="gw", backend="b", sink=sink)
    with pytest.raises(RuntimeError, match="database connection refused"):
        call(app)
    [(leg, envelope)] = records
    assert leg.status == 500
    assert leg.error == "RuntimeError: database connection refused"
    assert leg.response_bytes == 0
    wire_roundtrip(leg, envelope)
    records.clear()
    quiet = RequestLegMiddleware(failing_app, gateway="gw", backend="b", sink=sink, error_detail=False)
    with pytest.raises(RuntimeError):
        call(quiet)
    assert records[0][0].error == "RuntimeError"


def test_experiment_from_baggage_and_headers_win():
    assert parse_baggage("experiment.id=exp%2D1;prop=x, userId=alice,experiment.phase=baseline") == {
        "experiment.id": "exp-1", "userId": "alice", "experiment.phase": "baseline"}
    records, sink = list_sink()
    app = RequestLegMiddleware(echo_app, gateway="gw", backend="b", leg="shadow", sink=sink)
    call(app, headers=[("baggage", "experiment.id=exp-1,experiment.phase=baseline")])
    call(app, headers=[("baggage", "experiment.id=exp-1"), ("X-Experiment-Id", "exp-2")])
    assert [(leg.experiment_id, leg.phase, leg.leg) for leg, _ in records] == [
        ("exp-1", "baseline", "shadow"), ("exp-2", "", "shadow")]


def test_failing_sink_never_fails_the_request():
    def broken_sink(leg, envelope):
        raise OSError("telemetry is down")

    sent = call(RequestLegMiddleware(echo_app, gateway="gw", backend="b", sink=broken_sink))
    assert sent[0]["status"] == 200


def test_other_scopes_pass_through():
    records, sink = list_sink()
    seen = []

    async def app(scope, receive, send):
        seen.append(scope["type"])

    asyncio.run(RequestLegMiddleware(app, gateway="gw", backend="b", sink=sink)(
        {"type": "lifespan"}, None, None))
    assert seen == ["lifespan"] and records == []


def test_closed_broker_and_full_buffer_never_block_or_fail_requests():
    emitter = EventEmitter(f"127.0.0.1:{free_port()}", "hub.requests", max_buffer=10)
    try:
        app = RequestLegMiddleware(echo_app, emitter, gateway="gw", backend="b",
                                   route_of=route_template)
        started = time.monotonic()
        for i in range(100):
            sent = call(app, f"/patients/{i}", query=b"name=Jane")
            assert sent[0]["status"] == 200 and sent[1]["body"] == BODY[:10]
        elapsed = time.monotonic() - started
        stats = emitter.stats()
        # nothing can be sent: 10 events wait in the buffer, the other 90 were dropped
        assert (stats["queued"], stats["dropped_buffer_full"], stats["sent"]) == (10, 90, 0)
        assert elapsed < 5.0  # generous: the point is that no call waited for the broker
        buffered = [payload for _, payload in emitter._buffer]  # (leg, envelope), encoded later
        assert {leg.route for leg, _ in buffered} == {"/patients/{id}"}
        assert all(b"Jane" not in encode_event(new_event(leg, **envelope)) for leg, envelope in buffered)
    finally:
        emitter.close(timeout=0.5)
    stats = emitter.stats()
    assert (stats["queued"], stats["dropped_send_failed"]) == (0, 10)
    assert emitter.emit_leg(buffered[0][0]) is False
    assert emitter.stats()["dropped_closed"] == 1


# ---- the emitter's own partitioner (pure logic) ------------------------------------------------


def test_murmur2_equals_kafka_python_and_partition_for_matches_the_default_partitioner():
    import random

    from kafka.partitioner.default import murmur2 as kafka_murmur2

    from hub.emit._emitter import murmur2

    rng = random.Random(7)
    for length in range(0, 70):
        for _ in range(30):
            data = rng.randbytes(length)
            assert murmur2(data) == kafka_murmur2(data)
    from hub.emit import partition_for

    for _ in range(200):
        key = str(uuid.UUID(int=rng.getrandbits(128))).encode()
        assert partition_for(key, 4) == (kafka_murmur2(key) & 0x7FFFFFFF) % 4
