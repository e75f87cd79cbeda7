"""OTLP metrics and logs made by the OpenTelemetry SDK's own encoders, published to the topics the
Collector's Kafka exporter writes, stored by the worker and queried with SQL, in both encodings."""

from __future__ import annotations

import pytest

from hub.producer import send_records
from hub.testing import WorkerProcess
from tests.integration.test_otel_decode_store import make_logs, make_metrics, otlp_json

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse, pytest.mark.slow]


def test_sdk_metrics_and_logs_through_the_topics_into_the_store(tmp_path, kafka_bootstrap):
    from opentelemetry.trace import SpanContext

    metrics = make_metrics()
    logs = make_logs(SpanContext(trace_id=0xABC, span_id=0xDEF, is_remote=False))
    with WorkerProcess.start(tmp_path / "home", kafka_bootstrap) as worker:
        for value in (metrics.SerializeToString(), otlp_json(metrics)):
            send_records(kafka_bootstrap, worker.settings.topic_metrics, [(None, value)])
        for value in (logs.SerializeToString(), otlp_json(logs)):
            send_records(kafka_bootstrap, worker.settings.topic_logs, [(None, value)])
        assert worker.wait_for("SELECT count() FROM hub.otel_logs", 6, timeout=60) == 6
        assert worker.wait_for("SELECT count() FROM hub.otel_metrics_histogram", 2, timeout=60) == 2
        sums = worker.sql("SELECT MetricName, Value, IsMonotonic, Attributes['route'], ExperimentId "
                          "FROM hub.otel_metrics_sum ORDER BY MetricName, Value")
        assert ["requests", 5.0, True, "/cart", "exp-42"] in sums and ["in_flight", 3.0, False, "/cart", "exp-res"] in sums  # from the resource
        assert len(sums) == 4  # two sums, each from both encodings
        histogram = worker.sql("SELECT DISTINCT Count, Sum, BucketCounts, ExplicitBounds "
                               "FROM hub.otel_metrics_histogram")
        assert histogram == [[4, 562.5, [2, 1, 1], [10.0, 100.0]]]
        gauge = worker.sql("SELECT DISTINCT MetricName, Value, Attributes['queue'] FROM hub.otel_metrics_gauge")
        assert gauge == [["queue.depth", 7.5, "orders"]]
        bodies = worker.sql("SELECT DISTINCT SeverityText, Body, ServiceName FROM hub.otel_logs ORDER BY Body")
        assert ["ERROR", "connection refused", "checkout"] in bodies
        assert worker.sql("SELECT count() FROM hub.dead_letters") == [[0]]
