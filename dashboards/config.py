"""Grafana settings of the dashboards package, read in one place.

They are read from ``HUB_GRAFANA_*`` environment variables with defaults here for now; the
function is the only reader, so that they can move into ``hub.settings.Settings`` later without
touching the rest of the package.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Mapping
from urllib.parse import urlparse

from hub.settings import Settings

PLUGIN_ID = "grafana-clickhouse-datasource"

#: variable -> (default, meaning); README and ``hub dashboards --help`` show this list.
GRAFANA_SETTINGS: dict[str, tuple[str, str]] = {
    "HUB_GRAFANA_URL": ("", "Base URL of Grafana (http://grafana:3000); `hub dashboards push` and live annotations need it."),
    "HUB_GRAFANA_TOKEN": ("", "Service-account token for the Grafana HTTP API (Bearer)."),
    "HUB_GRAFANA_FOLDER": ("Gamedays", "Title of the Grafana folder that holds the generated dashboards."),
    "HUB_GRAFANA_FOLDER_UID": ("gameday-hub", "Uid of that folder."),
    "HUB_GRAFANA_DATASOURCE": ("gameday-hub ClickHouse", "Name of the ClickHouse datasource the dashboards query."),
    "HUB_GRAFANA_DATASOURCE_UID": ("gameday-hub-clickhouse", "Uid of that datasource (the dashboards refer to it by uid)."),
    "HUB_GRAFANA_REFRESH": ("5s", "Auto-refresh of the generated dashboards (5s or 10s suit a live gameday room)."),
    "HUB_GRAFANA_CLICKHOUSE_HOST": ("", "ClickHouse host as Grafana reaches it (default: the host of HUB_CLICKHOUSE_URL, else HUB_STORE_HOST, where the embedded store is served)."),
    "HUB_GRAFANA_CLICKHOUSE_PORT": ("", "ClickHouse port as Grafana reaches it (default: the port of HUB_CLICKHOUSE_URL, else HUB_STORE_PORT)."),
    "HUB_GRAFANA_CLICKHOUSE_PROTOCOL": ("http", "Protocol of the datasource: http or native."),
    "HUB_GRAFANA_CLICKHOUSE_USER": ("hub_grafana", "ClickHouse user of the datasource: a read-only user (`hub dashboards datasource-user`)."),
    "HUB_GRAFANA_CLICKHOUSE_PASSWORD": ("", "Its password (sent to Grafana as secureJsonData, never written to exported files)."),
    "HUB_GRAFANA_ANNOTATION_MAX_AGE": ("600", "Seconds: older lifecycle events (a worker replaying the log at start) get no live annotation."),
}


@dataclass(frozen=True)
class GrafanaConfig:
    url: str
    token: str
    folder: str
    folder_uid: str
    datasource: str
    datasource_uid: str
    refresh: str
    database: str
    clickhouse_host: str
    clickhouse_port: int
    clickhouse_protocol: str
    clickhouse_user: str
    clickhouse_password: str
    annotation_max_age: float
    room_recent_hours: float = 6.0

    @property
    def datasource_ref(self) -> dict:
        return {"type": PLUGIN_ID, "uid": self.datasource_uid}


def grafana_config(settings: Settings, env: Mapping[str, str] | None = None) -> GrafanaConfig:
    """The Grafana settings: environment first, then the defaults above."""
    env = os.environ if env is None else env

    def get(name: str) -> str:
        return env.get(name, GRAFANA_SETTINGS[name][0]) or GRAFANA_SETTINGS[name][0]

    parsed = urlparse(settings.clickhouse_url) if settings.clickhouse_url else None
    if parsed is not None and parsed.scheme not in ("http", "https"):
        parsed = None  # chdb://: the embedded engine
    # Embedded: the store's endpoint (served by the worker, or `hub store serve`) on HUB_STORE_HOST:PORT.
    store_host = "127.0.0.1" if settings.store_host in ("", "0.0.0.0", "::") else settings.store_host
    host = get("HUB_GRAFANA_CLICKHOUSE_HOST") or (parsed.hostname if parsed and parsed.hostname else
                                                  "127.0.0.1" if parsed else store_host)
    port = get("HUB_GRAFANA_CLICKHOUSE_PORT") or (str(parsed.port) if parsed and parsed.port else
                                                  "8123" if parsed else str(settings.store_port))
    return GrafanaConfig(
        url=get("HUB_GRAFANA_URL").rstrip("/"), token=get("HUB_GRAFANA_TOKEN"), folder=get("HUB_GRAFANA_FOLDER"),
        folder_uid=get("HUB_GRAFANA_FOLDER_UID"), datasource=get("HUB_GRAFANA_DATASOURCE"),
        datasource_uid=get("HUB_GRAFANA_DATASOURCE_UID"), refresh=get("HUB_GRAFANA_REFRESH"),
        database=settings.database, clickhouse_host=host, clickhouse_port=int(port),
        clickhouse_protocol=get("HUB_GRAFANA_CLICKHOUSE_PROTOCOL"), clickhouse_user=get("HUB_GRAFANA_CLICKHOUSE_USER"),
        clickhouse_password=get("HUB_GRAFANA_CLICKHOUSE_PASSWORD"),
        annotation_max_age=float(get("HUB_GRAFANA_ANNOTATION_MAX_AGE")),
        room_recent_hours=settings.room_recent_hours,
    )
