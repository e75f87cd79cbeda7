"""Grafana settings of the dashboards package: the ``HUB_GRAFANA_*`` fields of
``hub.settings.Settings`` (``hub config`` lists them), with the datasource's host and port derived
from the store's settings when they are empty.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Mapping
from urllib.parse import urlparse

from hub.settings import Settings

PLUGIN_ID = "grafana-clickhouse-datasource"

#: the Settings fields of Grafana (``grafana_*``, read from ``HUB_GRAFANA_*``)
GRAFANA_FIELDS = tuple(f for f in dataclasses.fields(Settings) if f.name.startswith("grafana_"))


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


def _from_env(f: dataclasses.Field, env: Mapping[str, str]) -> Any:
    default: Any = f.default  # every Grafana setting has a plain default (a str, an int or a float)
    return type(default)(env.get(f.metadata["env"]) or default)


def grafana_config(settings: Settings, env: Mapping[str, str] | None = None) -> GrafanaConfig:
    """The Grafana settings of ``settings``; with ``env``, its ``HUB_GRAFANA_*`` values instead
    (the defaults where it has none), the rest of ``settings`` kept."""
    if env is not None:
        settings = settings.with_overrides(**{f.name: _from_env(f, env) for f in GRAFANA_FIELDS})
    defaults = Settings()

    def get(name: str) -> str:  # an empty value means the default, as the variables always have
        return str(getattr(settings, name) or getattr(defaults, name))

    parsed = urlparse(settings.clickhouse_url) if settings.clickhouse_url else None
    if parsed is not None and parsed.scheme not in ("http", "https"):
        parsed = None  # chdb://: the embedded engine
    # Embedded: the store's endpoint (served by the worker, or `hub store serve`) on HUB_STORE_HOST:PORT.
    store_host = "127.0.0.1" if settings.store_host in ("", "0.0.0.0", "::") else settings.store_host
    host = get("grafana_clickhouse_host") or (parsed.hostname if parsed and parsed.hostname else
                                              "127.0.0.1" if parsed else store_host)
    port = get("grafana_clickhouse_port") or (str(parsed.port) if parsed and parsed.port else
                                              "8123" if parsed else str(settings.store_port))
    return GrafanaConfig(
        url=get("grafana_url").rstrip("/"), token=get("grafana_token"), folder=get("grafana_folder"),
        folder_uid=get("grafana_folder_uid"), datasource=get("grafana_datasource"),
        datasource_uid=get("grafana_datasource_uid"), refresh=get("grafana_refresh"),
        database=settings.database, clickhouse_host=host, clickhouse_port=int(port),
        clickhouse_protocol=get("grafana_clickhouse_protocol"), clickhouse_user=get("grafana_clickhouse_user"),
        clickhouse_password=get("grafana_clickhouse_password"),
        annotation_max_age=float(settings.grafana_annotation_max_age),
        room_recent_hours=settings.room_recent_hours,
    )
