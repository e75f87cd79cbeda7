"""Rows dated near the end of what their column holds are kept for the TTL, not dropped at once.

A TTL of ``toDateTime(t) + INTERVAL N DAY`` wraps around to the 1970s for times near 2106 and
beyond (DateTime64 columns go further), so such a row used to vanish at the next merge right after
it was stored. ``OPTIMIZE ... FINAL`` applies the TTL now, on the real engine.
"""

from __future__ import annotations

import datetime as dt

import pytest

from tests.fixtures_clickhouse import migrated_copy

pytestmark = pytest.mark.clickhouse

UTC = dt.timezone.utc
#: The last second a DateTime (UInt32) holds, and the last nanosecond a DateTime64(9) holds.
DATETIME_MAX = "2106-02-07 06:28:15"
NANOS_MAX = 2**63 - 1

#: Tables with a TTL, and the column it reads (as inserted: DateTime64(3) text or nanoseconds).
TABLES = {
    "requests": ("event_time", 3), "shadow_pairs": ("event_time", 3), "otel_traces": ("Timestamp", 9),
    "otel_logs": ("Timestamp", 9), "otel_metrics_gauge": ("TimeUnix", 9), "otel_metrics_sum": ("TimeUnix", 9),
    "otel_metrics_histogram": ("TimeUnix", 9), "otel_metrics_exponential_histogram": ("TimeUnix", 9),
    "otel_metrics_summary": ("TimeUnix", 9),
}


def _ns(t: dt.datetime) -> int:
    return int(t.timestamp()) * 10**9


def _insert(store, table: str, times: list[dt.datetime | int]) -> None:
    column, scale = TABLES[table]
    values = []
    for i, t in enumerate(times):
        if isinstance(t, int):
            value = f"fromUnixTimestamp64Nano(toInt64({t}), 'UTC')"
        else:
            value = f"toDateTime64('{t.strftime('%Y-%m-%d %H:%M:%S')}', {scale}, 'UTC')"
        extra = ", 'id-%d'" % i if table in ("otel_traces",) else ""
        values.append(f"({value}{extra})")
    columns = column + (", TraceId" if table == "otel_traces" else "")
    store.command(f"INSERT INTO {store.database}.{table} ({columns}) VALUES {', '.join(values)}")


def _kept(store, table: str) -> list[str]:
    column, _ = TABLES[table]
    store.command(f"OPTIMIZE TABLE {store.database}.{table} FINAL")
    return [str(r[0]) for r in store.query(
        f"SELECT toString(toYear({column})) FROM {store.database}.{table} ORDER BY {column}").result_rows]


@pytest.mark.parametrize("table", sorted(TABLES))
def test_rows_near_the_columns_maximum_outlive_the_merge_and_old_rows_still_expire(hub_settings, table):
    store = migrated_copy(hub_settings.with_overrides(ttl_days=90))
    now = dt.datetime.now(UTC).replace(microsecond=0)
    near_2106 = dt.datetime(2106, 1, 1, tzinfo=UTC)  # + 90 days is past what a DateTime holds
    top = dt.datetime(2299, 12, 31, 23, 59, 59, tzinfo=UTC) if TABLES[table][1] == 3 else NANOS_MAX
    times = [now - dt.timedelta(days=200), now - dt.timedelta(days=1), near_2106, top]
    times_years = [t.year if isinstance(t, dt.datetime) else None for t in times]
    if TABLES[table][1] == 9:
        times = [_ns(t) if isinstance(t, dt.datetime) else t for t in times]
    _insert(store, table, times)
    top_year = "2299" if TABLES[table][1] == 3 else "2262"
    # the row of 200 days ago expired; yesterday's, and those dated near the maximum, are kept
    assert _kept(store, table) == [str(times_years[1]), "2106", top_year]


def test_the_trace_id_lookup_keeps_a_trace_that_starts_near_the_maximum(hub_settings):
    store = migrated_copy(hub_settings.with_overrides(ttl_days=90))
    _insert(store, "otel_traces", [NANOS_MAX])
    store.command(f"OPTIMIZE TABLE {store.database}.otel_traces_trace_id_ts FINAL")
    rows = store.query(f"SELECT TraceId, toString(Start), toString(End) "
                       f"FROM {store.database}.otel_traces_trace_id_ts").result_rows
    assert [tuple(r) for r in rows] == [("id-0", DATETIME_MAX, DATETIME_MAX)]


def test_without_a_ttl_rows_are_kept_for_good(hub_settings):
    store = migrated_copy(hub_settings.with_overrides(ttl_days=0))
    old = dt.datetime(2001, 1, 1, tzinfo=UTC)
    _insert(store, "requests", [old, dt.datetime(2106, 1, 1, tzinfo=UTC)])
    _insert(store, "otel_traces", [_ns(old), NANOS_MAX])
    assert _kept(store, "requests") == ["2001", "2106"]
    assert _kept(store, "otel_traces") == ["2001", "2262"]
