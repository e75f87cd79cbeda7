"""Grafana dashboards, live annotations and alert rules for experiments (see ``dashboards/README.md``).

- ``experiment_dashboard(definition, cfg)``: one experiment's dashboard JSON;
- ``overview_dashboard(cfg)``: the gameday-room overview;
- ``alert_rules(definition, cfg)``: the abort rules as Grafana alert rules;
- ``Publisher(cfg).push(dashboards)``, ``export(dir, dashboards, cfg)``: to Grafana, or to files;
- ``GrafanaAnnotator(settings).on_event(event)``: a registry listener posting timeline annotations;
- ``grafana_config(settings)``: the ``HUB_GRAFANA_*`` settings.
"""

from dashboards.alert_rules import alert_rules
from dashboards.config import GrafanaConfig, grafana_config
from dashboards.experiment import dashboard_uid, experiment_dashboard, shadow_pairs_available
from dashboards.overview import overview_dashboard
from dashboards.provisioning import export
from dashboards.publish import GrafanaAnnotator, Publisher

__all__ = ["GrafanaConfig", "GrafanaAnnotator", "Publisher", "alert_rules", "dashboard_uid", "experiment_dashboard",
           "export", "grafana_config", "overview_dashboard", "shadow_pairs_available"]
