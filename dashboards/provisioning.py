"""Files a Grafana loads at start-up: dashboards as JSON, plus provisioning YAML for the ClickHouse
datasource, the dashboard provider and (optionally) the abort rules as alert rules.

Layout under the export folder::

    dashboards/gameday-room.json, dashboards/<experiment dashboard uid>.json
    provisioning/datasources/gameday-hub.yaml
    provisioning/dashboards/gameday-hub.yaml
    provisioning/alerting/gameday-hub.yaml          (with alert rules)
    alert-rules/<rule uid>.json                       (the same rules, API shape)

Point Grafana's ``paths.provisioning`` at ``provisioning/`` (or copy its files into yours). The
dashboard provider reads ``dashboards/`` at the path Grafana sees (``grafana_path``, default
the absolute export path). The datasource password is never written: the YAML refers to
``$HUB_GRAFANA_CLICKHOUSE_PASSWORD``, which Grafana expands from its own environment.
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from dashboards.alert_rules import file_group
from dashboards.config import PLUGIN_ID, GrafanaConfig


def datasource_json(cfg: GrafanaConfig, *, password: str | None = None) -> dict:
    """The datasource as Grafana's API and provisioning take it (``jsonData`` of plugin v4)."""
    out = {
        "name": cfg.datasource, "uid": cfg.datasource_uid, "type": PLUGIN_ID, "access": "proxy", "isDefault": False,
        "jsonData": {"host": cfg.clickhouse_host, "port": cfg.clickhouse_port, "protocol": cfg.clickhouse_protocol,
                     "username": cfg.clickhouse_user, "defaultDatabase": cfg.database, "secure": False},
    }
    if password is not None:
        out["secureJsonData"] = {"password": password}
    return out


def datasource_provisioning(cfg: GrafanaConfig) -> dict:
    ds = datasource_json(cfg, password="$HUB_GRAFANA_CLICKHOUSE_PASSWORD")
    ds["editable"] = False
    return {"apiVersion": 1, "datasources": [ds]}


def dashboard_provider(cfg: GrafanaConfig, dashboards_path: str) -> dict:
    return {"apiVersion": 1, "providers": [{
        "name": "gameday-hub", "orgId": 1, "folder": cfg.folder, "folderUid": cfg.folder_uid, "type": "file",
        "disableDeletion": False, "allowUiUpdates": False, "updateIntervalSeconds": 10,
        "options": {"path": dashboards_path, "foldersFromFilesStructure": False},
    }]}


def export(directory: str | Path, dashboards: list[dict], cfg: GrafanaConfig, *, alert_rules: list[dict] | None = None,
           grafana_path: str | None = None) -> list[Path]:
    """Write everything; returns the files written."""
    root = Path(directory)
    written: list[Path] = []

    def write(rel: str, text: str) -> None:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        written.append(path)

    for d in dashboards:
        write(f"dashboards/{d['uid']}.json", json.dumps(d, indent=2, sort_keys=True) + "\n")
    dash_path = grafana_path or str((root / "dashboards").resolve())
    write("provisioning/datasources/gameday-hub.yaml", yaml.safe_dump(datasource_provisioning(cfg), sort_keys=False))
    write("provisioning/dashboards/gameday-hub.yaml", yaml.safe_dump(dashboard_provider(cfg, dash_path), sort_keys=False))
    if alert_rules is not None:
        write("provisioning/alerting/gameday-hub.yaml", yaml.safe_dump(file_group(alert_rules, cfg), sort_keys=False))
        for rule in alert_rules:
            write(f"alert-rules/{rule['uid']}.json", json.dumps(rule, indent=2, sort_keys=True) + "\n")
    return written
