"""An action row is stamped with the moment the action was begun, not when it answered: the halt
target (a local HTTP server that takes its time to answer) receives the call after the row's time,
and ``latency_ms`` carries how long it took; the abort row too."""

from __future__ import annotations

import datetime as dt
import http.server
import threading
import time
from types import SimpleNamespace

from hub.abort.actions import AlertActions
from hub.settings import load_settings


class SlowSwitch(http.server.BaseHTTPRequestHandler):
    received: list[dt.datetime] = []

    def do_POST(self):  # noqa: N802
        SlowSwitch.received.append(dt.datetime.now(dt.timezone.utc))
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        time.sleep(0.4)
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


class Recorded(AlertActions):
    def __init__(self, *args, **kwargs):
        self.rows: list[dict] = []
        super().__init__(*args, **kwargs)

    def _warm_up(self) -> None:
        pass

    def record(self, record: dict) -> None:
        self.rows.append(record)

    def _abort(self, alert: dict) -> dict:
        time.sleep(0.2)
        return {"ok": True, "error": "", "latency_ms": 200.0}


def test_an_action_row_carries_the_time_the_action_was_begun(tmp_path):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), SlowSwitch)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/halt"
    state = SimpleNamespace(status="running", definition=SimpleNamespace(halt=[SimpleNamespace(name="switch", url=url)]))
    actions = Recorded(load_settings({"HUB_HOME": str(tmp_path)}), experiment_of=lambda _id: state)
    alert = {"alert_id": "a1", "status": "firing", "severity": "abort", "experiment_id": "exp-1", "rule": "errors",
             "message": "errors above 0.2"}
    try:
        actions._halt_and_abort(alert)
    finally:
        server.shutdown()
    [received] = SlowSwitch.received
    rows = {row["action"]: row for row in actions.rows}
    halt, abort = rows["halt"], rows["abort"]
    assert halt["ok"] and halt["latency_ms"] >= 400
    # the halt was begun before the switch received it, which answered 0.4 s later
    assert dt.datetime.fromisoformat(halt["time"]) <= received
    assert dt.datetime.fromisoformat(abort["time"]) <= received and abort["latency_ms"] == 200.0
