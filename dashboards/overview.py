"""The gameday-room overview: every running experiment and every one that ended in the last hours
(``HUB_ROOM_RECENT_HOURS``), its phase or how it ended, its rules' state, its latest alerts."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as db_builder
from grafana_foundation_sdk.models import dashboard as dm

from dashboards import queries as Q
from dashboards.config import GrafanaConfig
from dashboards.experiment import TAGS, to_json
from dashboards.panels import ch_annotation, grafana_tags_annotation, table_panel, ts_panel

OVERVIEW_UID = "gameday-room"


def build_overview_dashboard(cfg: GrafanaConfig) -> db_builder.Dashboard:
    db, ds = cfg.database, cfg.datasource_ref
    d = (db_builder.Dashboard("Gameday room").uid(OVERVIEW_UID)
         .description("Every running or recently ended experiment: its phase or how it ended, the state of its abort "
                      "rules, its latest alerts.")
         .tags(TAGS + ["overview"]).refresh(cfg.refresh).time("now-1h", "now").timezone("utc").editable()
         .tooltip(dm.DashboardCursorSync.CROSSHAIR)
         .timepicker(db_builder.TimePicker().refresh_intervals(["5s", "10s", "30s", "1m", "5m"]))
         .link(db_builder.DashboardLink("Experiments").type(dm.DashboardLinkType.DASHBOARDS)
               .tags(["gameday-hub", "experiment"]).as_dropdown(True).include_vars(False).keep_time(True)
               .target_blank(False).icon("dashboard").tooltip("").url("")))
    d = d.annotation(ch_annotation("Phases", ds, Q.annotation_running_phases(db), "rgba(31, 120, 193, 0.25)"))
    d = d.annotation(ch_annotation("Alerts", ds, Q.annotation_alerts(db), "yellow"))
    d = d.annotation(grafana_tags_annotation("Live timeline (posted by the hub)", ["gameday-hub"], "orange"))
    hours = cfg.room_recent_hours
    recent = f"running, or ended in the last {hours:g} h (HUB_ROOM_RECENT_HOURS)"
    d = d.with_panel(table_panel("Experiments in the room", ds, Q.running_experiments(db, hours), span=24, height=6,
                                 description=f"Experiments {recent}, with how they ended and why."))
    d = d.with_panel(table_panel("Abort rules", ds, Q.rules_state(db, hours), span=12, height=9,
                                 description=f"Each rule's latest state from the abort judge, for experiments {recent}; "
                                             "ok when it never fired."))
    d = d.with_panel(table_panel("Latest alerts", ds, Q.latest_alerts(db, hours), span=12, height=9,
                                 description=f"Alerts of experiments {recent}."))
    d = d.with_panel(ts_panel("Error rate per experiment", ds, Q.overview_error_rate(db, hours), unit="percentunit"))
    d = d.with_panel(ts_panel("Request rate per experiment", ds, Q.overview_request_rate(db, hours), unit="reqps"))
    return d


def overview_dashboard(cfg: GrafanaConfig) -> dict:
    return to_json(build_overview_dashboard(cfg))
