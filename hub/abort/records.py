"""Alert records from ``hub.alerts`` as ``alerts`` rows."""

from __future__ import annotations

import datetime as dt
import json
from typing import Sequence

from hub.errors import InvalidRecord
from hub.records.decode import DecodedBatch, RawMessage

ALERT_COLUMNS = ("time", "kind", "alert_id", "status", "experiment_id", "rule", "severity", "measurement",
                 "comparison", "threshold", "observed", "samples", "window_start", "window_end",
                 "top_contributors", "example_request_ids", "message", "action", "url", "ok", "status_code",
                 "attempts", "error")


def _time(value):
    if not value:
        return None
    return dt.datetime.fromisoformat(value).astimezone(dt.timezone.utc)


def alert_row(r: dict) -> tuple:
    return (
        _time(r["time"]), r["kind"], r.get("alert_id") or "", r.get("status", ""), r["experiment_id"],
        r.get("rule", ""), r.get("severity", ""), r.get("measurement", ""), r.get("comparison", ""),
        float(r.get("threshold") or 0.0), r.get("observed"), int(r.get("samples") or 0),
        _time(r.get("window_start")), _time(r.get("window_end")), json.dumps(r.get("top_contributors", [])),
        list(r.get("example_request_ids", [])), r.get("message", ""), r.get("action", ""), r.get("url", ""),
        r.get("ok"), r.get("status_code"), int(r.get("attempts") or 0), r.get("error", ""),
    )


def decode_alerts(messages: Sequence[RawMessage], max_bytes: int) -> DecodedBatch:
    rows, invalid, sources = [], [], []
    for m in messages:
        try:
            rows.append(alert_row(json.loads(m.value)))
            sources.append((m.offset, -1))
        except (ValueError, KeyError, TypeError) as exc:
            invalid.append(InvalidRecord(f"schema: not an alert record ({exc})", m.topic, m.partition, m.offset))
    return DecodedBatch(rows, invalid, sources)
