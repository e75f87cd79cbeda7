"""OpenTelemetry data as the OpenTelemetry Collector's Kafka exporter writes it, decoded into rows
of tables shaped like the Collector's ClickHouse exporter (see ``hub/otel/README.md``)."""

from hub.otel.decode import (
    DEFAULT_TOPICS,
    ENCODINGS,
    EXP_HISTOGRAM_COLUMNS,
    GAUGE_COLUMNS,
    HISTOGRAM_COLUMNS,
    LOG_COLUMNS,
    METRIC_TABLES,
    SUM_COLUMNS,
    SUMMARY_COLUMNS,
    TRACE_COLUMNS,
    MetricsBatch,
    decode_logs,
    decode_metrics,
    decode_spans,
)

__all__ = [
    "DEFAULT_TOPICS",
    "ENCODINGS",
    "EXP_HISTOGRAM_COLUMNS",
    "GAUGE_COLUMNS",
    "HISTOGRAM_COLUMNS",
    "LOG_COLUMNS",
    "METRIC_TABLES",
    "SUM_COLUMNS",
    "SUMMARY_COLUMNS",
    "TRACE_COLUMNS",
    "MetricsBatch",
    "decode_logs",
    "decode_metrics",
    "decode_spans",
]
