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
    assert lines[1] == ("  stored per table: experiment_events=3 otel_metrics_gauge=108 otel_metrics_sum=9 "
                        "otel_metrics_summary=4")
