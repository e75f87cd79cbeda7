"""Alert and dead-letter rows are built by column name: with their column constant in another
order, each value still sits under its own column (a reordered constant once stored an alert's
rule under ``measurement`` and its measurement under ``rule``)."""

from __future__ import annotations

import datetime as dt

import pytest

from hub.abort import records as alert_records
from hub.records import decode
from hub.records.decode import InvalidRecord, RawMessage

ALERT = {"time": "2026-12-07T14:03:05Z", "kind": "alert", "alert_id": "a-1", "status": "firing",
         "experiment_id": "exp-1", "rule": "checkout-errors", "severity": "abort", "measurement": "error_rate",
         "comparison": ">", "threshold": 0.2, "observed": 0.31, "samples": 120, "message": "errors above 0.2",
         "outside_run": False}


def by_name(columns, row) -> dict:
    assert len(columns) == len(row)
    return dict(zip(columns, row, strict=True))


@pytest.mark.parametrize("shift", [1, 5, 11])
def test_an_alert_row_follows_its_columns_in_any_order(monkeypatch, shift):
    expected = by_name(alert_records.ALERT_COLUMNS, alert_records.alert_row(dict(ALERT)))
    assert (expected["rule"], expected["measurement"], expected["samples"]) == ("checkout-errors", "error_rate", 120)
    rotated = alert_records.ALERT_COLUMNS[shift:] + alert_records.ALERT_COLUMNS[:shift]
    monkeypatch.setattr(alert_records, "ALERT_COLUMNS", rotated)
    assert by_name(rotated, alert_records.alert_row(dict(ALERT))) == expected


@pytest.mark.parametrize("shift", [1, 3, 6])
def test_a_dead_letter_row_follows_its_columns_in_any_order(monkeypatch, shift):
    raw = RawMessage("legs", 2, 41, b"k", b"{not json", 1_765_000_000_000)
    when = dt.datetime(2026, 12, 7, 14, 3, 5, tzinfo=dt.timezone.utc)
    invalid = InvalidRecord("json: unexpected character", "legs", 2, 41)
    expected = by_name(decode.DEAD_LETTER_COLUMNS, decode.dead_letter_row(invalid, raw, when))
    assert (expected["source_partition"], expected["source_offset"]) == (2, 41)
    rotated = decode.DEAD_LETTER_COLUMNS[shift:] + decode.DEAD_LETTER_COLUMNS[:shift]
    monkeypatch.setattr(decode, "DEAD_LETTER_COLUMNS", rotated)
    assert by_name(rotated, decode.dead_letter_row(invalid, raw, when)) == expected
