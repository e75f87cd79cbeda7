"""Publishing against a real HTTP server on loopback that answers as Grafana's HTTP API documents
(folders, datasources, dashboards, alert-rule provisioning, annotations) and records every call:
``hub dashboards push`` creates the folder, the ClickHouse datasource and the dashboards; a second
push updates instead of duplicating; the annotator posts the timeline as it happens."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlparse

import msgspec
import pytest
import yaml

from dashboards.config import grafana_config
from dashboards.publish import GrafanaAnnotator, PublishError, Publisher
from hub.cli import dashboards as cli
from hub.experiments import lifecycle as L
from hub.experiments.definition import load_definition
from hub.settings import load_settings

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "experiments" / "patient-api-db-failover.yaml"
TOKEN = "glsa_test_token"


class FakeGrafana:
    """Grafana's documented answers, with state: folders, datasources, dashboards, rules, annotations."""

    def __init__(self):
        self.calls: list[dict] = []
        self.folders: dict[str, dict] = {}
        self.datasources: dict[str, dict] = {}
        self.dashboards: dict[str, dict] = {}
        self.rules: dict[str, dict] = {}
        self.annotations: dict[int, dict] = {}
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _answer(self, status: int, body) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _handle(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length)) if length else None
                path = unquote(urlparse(self.path).path)
                fake.calls.append({"method": self.command, "path": path, "body": body,
                                   "auth": self.headers.get("Authorization")})
                if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                    return self._answer(401, {"message": "Unauthorized"})
                status, answer = fake.route(self.command, path, body)
                self._answer(status, answer)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def route(self, method: str, path: str, body):
        parts = [unquote(p) for p in path.strip("/").split("/")]
        if parts[:2] == ["api", "folders"]:
            if method == "GET" and len(parts) == 3:
                f = self.folders.get(parts[2])
                return (200, f) if f else (404, {"message": "folder not found", "status": "not-found"})
            if method == "POST" and len(parts) == 2:
                if body["uid"] in self.folders:
                    return 409, {"message": "a folder with the same uid already exists"}
                self.folders[body["uid"]] = {"id": len(self.folders) + 1, "uid": body["uid"], "title": body["title"]}
                return 200, self.folders[body["uid"]]
        if parts[:2] == ["api", "datasources"]:
            if method == "GET" and parts[2:3] == ["name"]:
                ds = self.datasources.get(parts[3])
                return (200, ds) if ds else (404, {"message": "Data source not found"})
            if method == "POST" and len(parts) == 2:
                if body["name"] in self.datasources:
                    return 409, {"message": "data source with the same name already exists"}
                ds = {**body, "id": len(self.datasources) + 1}
                ds.pop("secureJsonData", None)
                self.datasources[body["name"]] = ds
                return 200, {"datasource": ds, "id": ds["id"], "message": "Datasource added", "name": ds["name"]}
            if method == "PUT" and parts[2:3] == ["uid"]:
                name = next((n for n, d in self.datasources.items() if d["uid"] == parts[3]), None)
                if name is None:
                    return 404, {"message": "Data source not found"}
                self.datasources[name] = {**self.datasources[name], **{k: v for k, v in body.items() if k != "secureJsonData"}}
                return 200, {"datasource": self.datasources[name], "id": self.datasources[name]["id"],
                             "message": "Datasource updated", "name": name}
        if parts == ["api", "dashboards", "db"] and method == "POST":
            dash = body["dashboard"]
            if body.get("folderUid") not in self.folders:
                return 400, {"message": "folder not found"}
            if dash["uid"] in self.dashboards and not body.get("overwrite"):
                return 412, {"message": "A dashboard with the same uid already exists", "status": "name-exists"}
            version = self.dashboards.get(dash["uid"], {}).get("version", 0) + 1
            self.dashboards[dash["uid"]] = {"dashboard": dash, "folderUid": body["folderUid"], "version": version}
            return 200, {"id": len(self.dashboards), "uid": dash["uid"], "url": f"/d/{dash['uid']}/x",
                         "status": "success", "version": version, "slug": "x"}
        if parts[:4] == ["api", "v1", "provisioning", "alert-rules"]:
            if method == "GET" and len(parts) == 5:
                r = self.rules.get(parts[4])
                return (200, r) if r else (404, {"message": "rule not found"})
            if method == "POST" and len(parts) == 4:
                self.rules[body["uid"]] = body
                return 201, body
            if method == "PUT" and len(parts) == 5:
                self.rules[parts[4]] = body
                return 200, body
        if parts[:2] == ["api", "annotations"]:
            if method == "POST" and len(parts) == 2:
                aid = len(self.annotations) + 1
                self.annotations[aid] = dict(body)
                return 200, {"message": "Annotation added", "id": aid}
            if method == "PATCH" and len(parts) == 3:
                aid = int(parts[2])
                if aid not in self.annotations:
                    return 404, {"message": "Annotation not found"}
                self.annotations[aid].update(body)
                return 200, {"message": "Annotation patched"}
        return 404, {"message": "Not found"}

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def grafana():
    fake = FakeGrafana()
    yield fake
    fake.close()


@pytest.fixture
def settings(tmp_path):
    return load_settings({"HUB_HOME": str(tmp_path / "home")})


def env_for(grafana) -> dict:
    return {"HUB_GRAFANA_URL": grafana.url, "HUB_GRAFANA_TOKEN": TOKEN, "HUB_GRAFANA_CLICKHOUSE_PASSWORD": "s3cret",
            "HUB_GRAFANA_CLICKHOUSE_HOST": "clickhouse.internal", "HUB_GRAFANA_CLICKHOUSE_PORT": "8123"}


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="hub")
    cli.register(p.add_subparsers(dest="command"))
    return p


def test_push_creates_folder_datasource_and_dashboards_then_updates_them(grafana, settings):
    settings = load_settings({"HUB_HOME": str(settings.home), **env_for(grafana)})
    args = parser().parse_args(["dashboards", "push", "--definition", str(EXAMPLE), "--shadow-pairs", "no",
                                "--alert-rules"])
    assert args.func(args, settings) == 0

    calls = [(c["method"], c["path"]) for c in grafana.calls]
    assert calls[:4] == [("GET", "/api/folders/gameday-hub"), ("POST", "/api/folders"),
                         ("GET", "/api/datasources/name/gameday-hub ClickHouse"), ("POST", "/api/datasources")]
    assert calls[4:6] == [("POST", "/api/dashboards/db")] * 2
    assert all(c["auth"] == f"Bearer {TOKEN}" for c in grafana.calls)
    folder = grafana.calls[1]["body"]
    assert folder == {"title": "Gamedays", "uid": "gameday-hub"}
    ds = grafana.calls[3]["body"]
    assert ds["type"] == "grafana-clickhouse-datasource" and ds["uid"] == "gameday-hub-clickhouse"
    assert ds["jsonData"] == {"host": "clickhouse.internal", "port": 8123, "protocol": "http", "username": "hub_grafana",
                              "defaultDatabase": "hub", "secure": False}
    assert ds["secureJsonData"] == {"password": "s3cret"}
    saved = [c["body"] for c in grafana.calls if c["path"] == "/api/dashboards/db"]
    assert [(b["dashboard"]["uid"], b["folderUid"], b["overwrite"]) for b in saved] == [
        ("gameday-room", "gameday-hub", True), ("gd-patient-api-db-failover", "gameday-hub", True)]
    assert all(b["dashboard"]["id"] is None for b in saved)
    panel_ds = {t["datasource"]["uid"] for b in saved for p in b["dashboard"]["panels"] for t in p.get("targets", [])}
    assert panel_ds == {"gameday-hub-clickhouse"}
    rules = [c for c in grafana.calls if c["path"].startswith("/api/v1/provisioning/alert-rules")]
    assert [c["method"] for c in rules] == ["GET", "POST"] * 3
    assert {r["body"]["folderUID"] for r in rules if r["body"]} == {"gameday-hub"}

    # A second push updates: no second folder or datasource, dashboards overwritten, rules replaced.
    grafana.calls.clear()
    assert args.func(args, settings) == 0
    calls = [(c["method"], c["path"]) for c in grafana.calls]
    assert ("POST", "/api/folders") not in calls and ("POST", "/api/datasources") not in calls
    assert ("PUT", "/api/datasources/uid/gameday-hub-clickhouse") in calls
    assert grafana.dashboards["gd-patient-api-db-failover"]["version"] == 2
    assert [c["method"] for c in grafana.calls if "alert-rules" in c["path"]] == ["GET", "PUT"] * 3
    assert len(grafana.folders) == len(grafana.datasources) == 1


def test_push_without_url_or_with_grafana_refusing_is_one_clear_error(grafana, settings):
    from hub.errors import UserError

    cfg = grafana_config(settings, env={})
    with pytest.raises(UserError, match="HUB_GRAFANA_URL"):
        Publisher(cfg)
    bad = grafana_config(settings, env={"HUB_GRAFANA_URL": grafana.url, "HUB_GRAFANA_TOKEN": "wrong"})
    with pytest.raises(PublishError, match="folder"):
        Publisher(bad).push([])


def test_annotator_posts_the_timeline_as_it_happens(grafana, settings):
    cfg = grafana_config(settings, env=env_for(grafana))
    annotator = GrafanaAnnotator(settings, cfg=cfg)
    defn = msgspec.structs.replace(load_definition(EXAMPLE), id="live-run")
    now = dt.datetime.now(dt.timezone.utc)

    def t(s):
        return now - dt.timedelta(seconds=60 - s)

    created = L.create(defn, "ana", t(0))
    state = L.apply(None, created)
    events = []

    def add(new):
        nonlocal state
        for e in new if isinstance(new, list) else [new]:
            state = L.apply(state, e)
            events.append(e)
            annotator.on_event(e)

    annotator.on_event(created)  # not a timeline event worth an annotation
    add(L.start(state, "ana", t(1), force=True))
    add(L.inject_fault(state, "stop-instance", "patients-db-primary", "jonas", t(10), injector="aws-fis", fault_id="f1"))
    add(L.add_note(state, "writes got 500", "lucas", t(12), note_kind="surprise", expected="503", actual="500"))
    add(L.remove_fault(state, "f1", "jonas", t(20)))
    add(L.change_phase(state, "injection", "ana", t(30)))
    add(L.abort(state, "api-failing fired", "abort-judge/api-failing", t(40)))
    annotator.on_event(events[-1])  # a repeated event is posted once
    assert annotator.flush(10)

    posts = [c for c in grafana.calls if c["method"] == "POST"]
    patches = [c for c in grafana.calls if c["method"] == "PATCH"]
    assert all(c["path"] == "/api/annotations" for c in posts)
    texts = [p["body"]["text"] for p in posts]
    assert [p["body"]["tags"][2] for p in posts] == ["start", "phase", "fault", "surprise", "phase", "abort"]
    assert texts[1] == "live-run: phase baseline (ana)"
    assert "stop-instance on patients-db-primary by aws-fis" in texts[2]
    assert "expected: 503; actual: 500" in texts[3]
    assert texts[5] == "live-run: aborted by abort-judge/api-failing: api-failing fired"
    assert all(p["body"]["tags"][:2] == ["gameday-hub", "live-run"] for p in posts)
    def ms(s):  # event times are stamped to the millisecond (rounded down)
        v = t(s)
        return int(round(v.replace(microsecond=v.microsecond // 1000 * 1000).timestamp() * 1000))

    # The fault became a region at its removal, baseline at the phase change, injection at the abort.
    assert [(c["path"], c["body"]) for c in patches] == [
        ("/api/annotations/3", {"timeEnd": ms(20)}), ("/api/annotations/2", {"timeEnd": ms(30)}),
        ("/api/annotations/5", {"timeEnd": ms(40)})]
    assert grafana.annotations[2]["time"] == ms(1) and grafana.annotations[2]["timeEnd"] == ms(30)
    assert annotator.posted == 6 and annotator.failed == 0
    annotator.close()


def test_annotator_skips_replayed_history_and_survives_grafana_down(settings):
    cfg = grafana_config(settings, env={"HUB_GRAFANA_URL": "http://127.0.0.1:9", "HUB_GRAFANA_TOKEN": TOKEN})
    annotator = GrafanaAnnotator(settings, cfg=cfg)
    defn = msgspec.structs.replace(load_definition(EXAMPLE), id="old-run")
    old = dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=2)
    state = L.apply(None, L.create(defn, "ana", old))
    for e in L.start(state, "ana", old, force=True):
        annotator.on_event(e)  # two hours old: a worker replaying the log, nothing posted
    assert annotator._thread is None
    state = L.apply(None, L.create(defn, "ana", dt.datetime.now(dt.timezone.utc)))
    started = time.monotonic()
    for e in L.start(state, "ana", dt.datetime.now(dt.timezone.utc), force=True):
        annotator.on_event(e)  # returns at once although nothing listens on port 9
    assert time.monotonic() - started < 0.5
    assert annotator.flush(30)
    assert annotator.failed == 2 and annotator.posted == 0
    annotator.close()
    # Without HUB_GRAFANA_URL the listener does nothing at all.
    quiet = GrafanaAnnotator(settings, cfg=grafana_config(settings, env={}))
    quiet.on_event(e)
    assert quiet._thread is None


def test_export_writes_dashboards_and_provisioning_grafana_can_load(tmp_path, settings):
    settings = settings.with_overrides(grafana_clickhouse_password="never-written")
    out = tmp_path / "grafana"
    args = parser().parse_args(["dashboards", "export", str(out), "--definition", str(EXAMPLE),
                                "--shadow-pairs", "no", "--alert-rules", "--grafana-path", "/var/lib/grafana/gameday"])
    assert args.func(args, settings) == 0
    files = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert "dashboards/gameday-room.json" in files and "dashboards/gd-patient-api-db-failover.json" in files
    ds = yaml.safe_load((out / "provisioning/datasources/gameday-hub.yaml").read_text())
    assert ds["apiVersion"] == 1 and ds["datasources"][0]["type"] == "grafana-clickhouse-datasource"
    assert ds["datasources"][0]["secureJsonData"] == {"password": "$HUB_GRAFANA_CLICKHOUSE_PASSWORD"}
    provider = yaml.safe_load((out / "provisioning/dashboards/gameday-hub.yaml").read_text())["providers"][0]
    assert provider["type"] == "file" and provider["options"]["path"] == "/var/lib/grafana/gameday"
    assert provider["folderUid"] == "gameday-hub"
    alerting = yaml.safe_load((out / "provisioning/alerting/gameday-hub.yaml").read_text())
    assert alerting["groups"][0]["folder"] == "Gamedays" and len(alerting["groups"][0]["rules"]) == 3
    assert not any("never-written" in p.read_text() for p in out.rglob("*") if p.is_file())
