"""An experiment command whose event the experiment log cannot take (larger than the broker
accepts) is a 413 with one line of JSON, not a 500 (the real broker, no worker needed)."""

from __future__ import annotations

import asyncio
import json
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
    title: Notes of any size
    scenario: Write a long note.
    hypothesis: The log takes it or says why not.
    expected_outcome: A clear answer.
    steady_state:
      - {{name: errors, sli: error_rate, source: requests, tolerance: {{max: 0.2}}}}
    environment: {{name: staging, kind: non-live, risk: low}}
    targets: {{gateways: [gw-notes]}}
""")


def test_an_event_too_large_for_the_log_is_a_413(tmp_path, kafka_bootstrap):
    # texts and bodies may be larger than the broker's 1 MiB limit: the log refuses the event
    env = isolated_env(tmp_path / "home", kafka_bootstrap, HUB_MAX_RECORD_BYTES="4000000",
                       HUB_MAX_TEXT_BYTES="3000000")
    settings = load_settings(env)
    experiment = f"exp-{uuid.uuid4().hex[:6]}"
    app = build_app(ApiContext(store=None, extra={"settings": settings, "registry": None}))

    async def go():
        async with TestClient(TestServer(app)) as client:
            created = await client.post("/v1/experiments", data=DEFINITION.format(id=experiment),
                                        headers={"Content-Type": "application/yaml"})
            assert created.status == 201, await created.text()
            small = await client.post(f"/v1/experiments/{experiment}/notes", json={"text": "a short note"})
            assert small.status == 201, await small.text()
            big = await client.post(f"/v1/experiments/{experiment}/notes", json={"text": "n" * 2_000_000})
            return big.status, big.content_type, await big.text()

    status, kind, text = asyncio.run(go())
    assert (status, kind) == (413, "application/json"), text[:300]
    error = json.loads(text)["error"]
    assert "larger than the experiment log accepts" in error and "\n" not in error
