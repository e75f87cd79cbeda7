"""Every route answers a body it cannot take with 400/413 and one line of JSON, never a 500 or a
traceback: bodies nested thousands of levels deep, larger than the limit, not UTF-8, texts longer
than HUB_MAX_TEXT_BYTES; and an unexpected error is a JSON 500 with one log line."""

from __future__ import annotations

import asyncio
import json
import logging

import pytest
from aiohttp.test_utils import TestClient, TestServer

from hub.api.server import ApiContext, build_app
from hub.settings import load_settings

DEEP = b"[" * 5000 + b"]" * 5000
DEEP_OBJECT = b'{"a":' * 5000 + b"1" + b"}" * 5000


def settings(tmp_path):
    # no broker answers here: every refusal below happens before the experiment log is touched
    return load_settings({"HUB_HOME": str(tmp_path), "HUB_KAFKA_BOOTSTRAP": "127.0.0.1:9",
                          "HUB_MAX_RECORD_BYTES": "200000", "HUB_MAX_TEXT_BYTES": "1000"})


def call(app, method, path, **kwargs):
    async def go():
        async with TestClient(TestServer(app)) as client:
            response = await client.request(method, path, **kwargs)
            return response.status, response.content_type, await response.text()
    return asyncio.run(go())


def app_of(tmp_path, **extra):
    s = settings(tmp_path)
    return build_app(ApiContext(store=None, extra={"settings": s, "registry": None, **extra}))


CASES = [
    ("/v1/experiments", DEEP, "application/json", 400),
    ("/v1/experiments", DEEP_OBJECT, "application/json", 400),
    ("/v1/experiments", DEEP, "application/yaml", 400),
    ("/v1/experiments", b"\xff\xfe\x00bad", "application/yaml", 400),
    ("/v1/experiments", b"x: " + b"a" * 300_000, "application/yaml", 413),
    ("/v1/experiments/e1/notes", DEEP, "application/json", 400),
    ("/v1/experiments/e1/notes", json.dumps({"text": "n" * 3_000_000}).encode(), "application/json", 413),
    ("/v1/experiments/e1/notes", json.dumps({"text": "n" * 5000}).encode(), "application/json", 413),
    ("/v1/experiments/e1/notes", json.dumps({"text": "ok", "tags": ["t" * 5000]}).encode(), "application/json", 413),
    ("/v1/experiments/e1/abort", json.dumps({"reason": "r" * 5000}).encode(), "application/json", 413),
    ("/v1/experiments/e1/complete", json.dumps({"summary": "s" * 5000}).encode(), "application/json", 413),
    ("/v1/experiments/e1/notes", b"[1, 2]", "application/json", 400),
    ("/v1/experiments/e1/notes", b"\xff", "application/json", 400),
    ("/v1/experiments/e1/start", b"{not json", "application/json", 400),
    ("/v1/integrations/spinnaker", DEEP, "application/json", 400),
    ("/v1/integrations/spinnaker", DEEP_OBJECT, "application/json", 400),
    ("/v1/integrations/spinnaker", b"{" + b" " * 300_000 + b"}", "application/json", 413),
    ("/v1/experiments/e1/canary-judge", DEEP, "application/json", 400),
    ("/v1/sql", DEEP, "application/json", 400),
    ("/v1/sql", b"[" * 70 + b"]" * 70, "application/json", 400),
]


@pytest.mark.parametrize("path,body,content_type,status", CASES)
def test_a_body_past_the_limits_is_a_one_line_json_error(tmp_path, path, body, content_type, status):
    got, kind, text = call(app_of(tmp_path), "POST", path, data=body, headers={"Content-Type": content_type})
    assert (got, kind) == (status, "application/json"), text[:300]
    error = json.loads(text)["error"]
    assert error and "\n" not in error and "Traceback" not in error


def test_an_unexpected_error_is_a_json_500_and_one_log_line(tmp_path, caplog):
    app = app_of(tmp_path)

    async def broken(_):
        raise RecursionError("maximum recursion depth exceeded\nmore")

    app.router.add_get("/v1/broken", broken)
    with caplog.at_level(logging.ERROR, logger="hub.api.server"):
        status, kind, text = call(app, "GET", "/v1/broken")
    assert (status, kind) == (500, "application/json")
    assert "RecursionError" in json.loads(text)["error"]
    [record] = [r for r in caplog.records if r.name == "hub.api.server"]
    assert record.exc_info is None and "GET /v1/broken" in record.getMessage() and "\n" not in record.getMessage()


def test_an_unknown_route_is_a_json_404(tmp_path):
    status, kind, text = call(app_of(tmp_path), "GET", "/v1/nothing")
    assert (status, kind) == (404, "application/json") and json.loads(text)["error"]
