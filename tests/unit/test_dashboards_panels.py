"""The panel builders of ``dashboards.panels`` build Grafana panels with the options they are given."""

from __future__ import annotations

from dashboards.panels import stat_panel

DS = {"type": "grafana-clickhouse-datasource", "uid": "hub"}


def test_a_stat_panel_shows_the_last_value_of_the_fields_it_is_given():
    panel = stat_panel("Requests", DS, "SELECT 1 AS n", fields="/^n$/").build()
    assert panel.title == "Requests"
    assert panel.datasource.uid == "hub"
    reduce = panel.options.reduce_options
    assert (reduce.values, reduce.calcs, reduce.fields) == (True, ["lastNotNull"], "/^n$/")
    assert [t.raw_sql for t in panel.targets] == ["SELECT 1 AS n"]
