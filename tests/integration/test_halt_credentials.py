"""A halt target with credentials in its URL (user info and a query token) is called with them:
created through the CLI on the real broker, started, its abort rule fired by failing legs through
the worker, the halt target (a local aiohttp server) checks the basic authentication and the
token. The store's copy of the definition shows the target masked, never rewritten."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import json
import threading

import pytest
from aiohttp import web

from hub.producer import send_records
from hub.testing import WorkerProcess
from tests.integration.test_abort_run import hub, legs, wait_until

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse, pytest.mark.slow]

DEFINITION = """
id: {id}
title: Checkout survives a zone outage
scenario: Stop zone b while checkout traffic flows.
hypothesis: Errors stay under 20%.
expected_outcome: No abort.
steady_state:
  - {{name: errors, sli: error_rate, source: requests, tolerance: {{max: 0.2}}}}
participants:
  - {{name: Jonas Weber, role: injector}}
environment: {{name: staging, kind: non-live, risk: low}}
targets: {{gateways: [{gateway}]}}
halt:
  - {{name: fault-switch, url: "http://opsuser:S3cretPw99@127.0.0.1:{port}/halt?token=TOPSECRET123"}}
abort_conditions:
  - {{name: checkout-errors, measurement: error_rate, window: 10s, comparison: ">", threshold: 0.2,
      min_samples: 50, severity: abort}}
"""


class Switch:
    """The fault switch: answers 200 only with the right basic authentication and token."""

    def __init__(self):
        self.calls: list[tuple[str | None, str | None, int]] = []
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()
        assert self.ready.wait(10)

    async def _handle(self, request: web.Request) -> web.Response:
        auth, token = request.headers.get("Authorization"), request.query.get("token")
        ok = auth == "Basic " + base64.b64encode(b"opsuser:S3cretPw99").decode() and token == "TOPSECRET123"
        self.calls.append((auth, token, 200 if ok else 401))
        return web.json_response({}, status=200 if ok else 401)

    def _serve(self) -> None:
        asyncio.set_event_loop(self.loop)
        app = web.Application()
        app.router.add_post("/halt", self._handle)
        runner = web.AppRunner(app)
        self.loop.run_until_complete(runner.setup())
        site = web.TCPSite(runner, "127.0.0.1", 0)
        self.loop.run_until_complete(site.start())
        self.port = site._server.sockets[0].getsockname()[1]
        self.ready.set()
        self.loop.run_forever()


def test_a_halt_target_with_credentials_is_called_with_them(tmp_path, kafka_bootstrap):
    switch = Switch()
    experiment, gateway = f"cred-secret-{tmp_path.name[-6:]}".lower().replace("_", "-"), f"gw-{tmp_path.name[-6:]}"
    path = tmp_path / "experiment.yaml"
    path.write_text(DEFINITION.format(id=experiment, gateway=gateway, port=switch.port))
    with WorkerProcess.start(tmp_path / "home", kafka_bootstrap, HUB_CORRELATION_LATENESS="1") as worker:
        env = worker.env
        hub(env, "experiment", "create", str(path))
        hub(env, "experiment", "check", experiment, "--all-done")
        hub(env, "experiment", "start", experiment)
        now = dt.datetime.now(dt.timezone.utc)
        send_records(kafka_bootstrap, worker.settings.topic_requests, legs(gateway, now, 100, errors=80))
        assert wait_until(lambda: switch.calls, timeout=90), worker.sql(
            f"SELECT action, ok, error FROM hub.alerts WHERE kind = 'action' AND experiment_id = '{experiment}'")
        assert switch.calls[0][2] == 200, switch.calls
        assert worker.wait_for(f"SELECT count() FROM hub.alerts WHERE kind = 'action' AND action = 'halt' "
                               f"AND experiment_id = '{experiment}' AND ok", 1, timeout=60) == 1
        shown = json.loads(hub(env, "experiment", "show", experiment, "--json"))
        assert shown["status"] == "aborted" and shown["abort_reason"].startswith(f"{experiment}: rule "), shown
        [[payload]] = worker.sql(f"SELECT payload FROM hub.experiment_events WHERE experiment_id = '{experiment}' "
                                 "AND kind = 'experiment_created'")
        definition = json.loads(payload)["definition"]
        assert definition["halt"][0]["url"] == f"http://***@127.0.0.1:{switch.port}/halt?token=***"
        assert definition["participants"] == [{"name": "Jonas Weber", "role": "injector"}]
        [[url]] = worker.sql(f"SELECT url FROM hub.alerts WHERE kind = 'action' AND action = 'halt' "
                             f"AND experiment_id = '{experiment}'")
        assert "S3cretPw99" not in url and "TOPSECRET123" not in url
