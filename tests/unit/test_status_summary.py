"""``hub status``'s sink summary: the rows stored, in total and per table."""

from hub.cli.stack import sink_lines


def test_the_summary_counts_every_kind_stored_per_table():
    sinks = {"requests": {"stored": 0, "invalid": 0, "batches": 0, "skipped": 0, "stored_by_table": {}},
             "experiments": {"stored": 3, "invalid": 0, "batches": 2, "skipped": 0,
                             "stored_by_table": {"experiment_events": 3}},
             "metrics": {"stored": 121, "invalid": 0, "batches": 1, "skipped": 0,
                         "stored_by_table": {"otel_metrics_gauge": 108, "otel_metrics_sum": 9,
                                             "otel_metrics_summary": 4}}}
    lines = sink_lines(sinks, None)
    assert lines[0] == "sinks:  stored=124 dead-lettered=0 batches=3 skipped-after-restart=0"
    # Counted by the sinks since the worker started (not the tables' row counts), and labelled so.
    assert lines[1] == ("  since the worker started, stored per table: experiment_events=3 otel_metrics_gauge=108 otel_metrics_sum=9 "
                        "otel_metrics_summary=4")


def test_status_names_the_stores_clickhouse_endpoint_and_its_read_only_user(tmp_path, capsys, monkeypatch):
    import argparse

    from hub.cli.stack import cmd_status
    from hub.settings import load_settings

    settings = load_settings({"HUB_HOME": str(tmp_path), "HUB_STORE_HOST": "127.0.0.1", "HUB_STORE_PORT": "48123",
                              "HUB_GRAFANA_CLICKHOUSE_USER": "grafana_reader"})
    cmd_status(argparse.Namespace(json=False), settings)
    assert "served on http://127.0.0.1:48123 (ClickHouse HTTP interface, read-only user grafana_reader)" \
        in capsys.readouterr().out
