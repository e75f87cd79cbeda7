"""Every time column the OTLP decoder writes is range-checked before it reaches the store.

A ``DateTime64(9)`` column holds nanoseconds up to 2262-04-11; a larger value (an OTLP time is a
uint64) makes the whole INSERT fail with ``value out of range``. The decoder refuses such a record
by the table's time checks in ``hub/otel/decode.py`` (``_SPAN_TIMES``, ``_LOG_TIMES``,
``_METRIC_TIMES``), so a time column added to a table and its column constant must be added there
too: these tests read the columns' types from a store migrated by every file (DESCRIBE TABLE)."""

from __future__ import annotations

import pytest

from hub.otel.decode import LOG_COLUMNS, TIME_CHECKS
from hub.storage.client import Store
from tests.migrated_columns import written_tables

pytestmark = pytest.mark.clickhouse

_DEF = "hub/otel/decode.py"


def _checked(columns: tuple[str, ...], times) -> tuple[set[str], set[str]]:
    """The columns ``times`` checks as scalars (its own time and the others) and as arrays."""
    scalars = {columns[times.own], *(columns[i] for i in times.scalars)}
    return scalars, {columns[i] for i in times.arrays}


def unchecked_times(store: Store, table: str, columns: tuple[str, ...], times) -> list[str]:
    """What is wrong with ``times`` for ``table``: each DateTime/DateTime64 column (or array of them)
    that ``columns`` writes and ``times`` does not check as what it is."""
    scalars, arrays = _checked(columns, times)
    faults = []
    for name, type_, *_ in store.query(f"DESCRIBE TABLE {store.database}.`{table}`").result_rows:
        if "DateTime" not in type_ or name not in columns:
            continue  # not a time, or left to its default (TimestampTime)
        is_array = type_.startswith("Array(")
        if name in (arrays if is_array else scalars):
            continue
        where = "arrays=(..., %r)" if is_array else "scalars=(..., %r)"
        wrong = " (it is checked, but as an array)" if name in arrays else (
            " (it is checked, but as a scalar)" if name in scalars else "")
        faults.append(f"{table}.{name} ({type_}) is written by the decoder but not range-checked{wrong}: "
                      f"add {where % name} to the table's _Times(...) in {_DEF} (_SPAN_TIMES, _LOG_TIMES or "
                      f"_METRIC_TIMES), or a value past 2262 makes the whole INSERT fail with 'value out of range'")
    return faults


def test_every_time_column_the_decoder_writes_is_range_checked(store):
    for table, (columns, times) in TIME_CHECKS.items():
        assert not unchecked_times(store, table, columns, times), unchecked_times(store, table, columns, times)


def test_every_otel_table_has_time_checks(store):
    """Every otel_* table the decoder writes (not those a materialized view fills) has its checks."""
    tables = {name for name in written_tables(store) if name.startswith("otel_")}
    assert "otel_logs" in tables and "otel_traces_trace_id_ts" not in tables  # filled by a view
    assert not tables - set(TIME_CHECKS), (f"otel tables without time checks: {sorted(tables - set(TIME_CHECKS))}; "
                                           f"add each to TIME_CHECKS in {_DEF} with its column constant and _Times")


def test_a_new_time_column_without_a_check_is_named_with_what_to_add(store):
    """The step a new column takes: a migration adds it and LOG_COLUMNS writes it, _LOG_TIMES is forgotten."""
    store.command(f"ALTER TABLE {store.database}.otel_logs ADD COLUMN ObservedTimestamp DateTime64(9) CODEC(Delta, ZSTD(1))")
    store.command(f"ALTER TABLE {store.database}.otel_logs ADD COLUMN `Notes.Time` Array(DateTime64(9))")
    columns, times = TIME_CHECKS["otel_logs"]
    assert columns == LOG_COLUMNS
    faults = unchecked_times(store, "otel_logs", columns + ("ObservedTimestamp", "Notes.Time"), times)
    assert len(faults) == 2, faults
    assert faults[0].startswith("otel_logs.ObservedTimestamp (DateTime64(9)) is written by the decoder but not "
                                "range-checked: add scalars=(..., 'ObservedTimestamp') to the table's _Times(...)")
    assert "_LOG_TIMES" in faults[0] and "value out of range" in faults[0]
    assert faults[1].startswith("otel_logs.Notes.Time (Array(DateTime64(9))) is written by the decoder but not "
                                "range-checked: add arrays=(..., 'Notes.Time')")
    # a column the decoder leaves to its default is no concern of the checks
    assert unchecked_times(store, "otel_logs", columns, times) == []
