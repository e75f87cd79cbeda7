"""The read-only SQL interface on the real engine: answers, limits, refusals that leave the store
unchanged, and the engine's own read-only mode holding when the guard is bypassed."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest

from hub.sql import QueryFailed, QueryRefused, execute_readonly, run_readonly

pytestmark = pytest.mark.clickhouse


@pytest.fixture
def filled(store):
    now = dt.datetime.now(dt.timezone.utc)  # recent: older rows would fall to the table's TTL
    rows = [(f"00000000-0000-0000-0000-{i:012d}", None, "exp-1", "baseline" if i < 30 else "injection",
             f"c{i}", "primary", "gw", "/a" if i % 2 else "/b", "GET", "be", 503 if i % 10 == 0 else 200, 10.0 + i,
             1, 1, "", "", "/test") for i in range(50)]
    cols = ["event_id", "event_time", "experiment_id", "phase", "correlation_id", "leg", "gateway", "route", "method",
            "backend", "status", "latency_ms", "request_bytes", "response_bytes", "response_hash", "error", "source"]
    store.insert(f"{store.database}.requests",
                 [[uuid.UUID(r[0]), now, *r[2:]] for r in rows], cols)
    return store


def count(store) -> int:
    return store.scalar(f"SELECT count() FROM {store.database}.requests")


def test_allowed_queries_run_and_return_rows(filled):
    db = filled.database
    result = run_readonly(filled, f"SELECT route, count() AS n FROM {db}.requests GROUP BY route ORDER BY route -- totals")
    assert result["columns"] == ["route", "n"] and result["rows"] == [["/a", 25], ["/b", 25]]
    assert result["row_count"] == 2 and result["truncated"] is False
    with_cte = run_readonly(filled, f"WITH e AS (SELECT * FROM {db}.requests WHERE status >= 500) "
                                    "SELECT count() FROM e WHERE route IN (SELECT '/b');")
    assert with_cte["rows"] == [[5]]
    assert run_readonly(filled, "SELECT 'DROP TABLE x; --' AS s /* DROP */")["rows"] == [["DROP TABLE x; --"]]
    assert ["requests"] in run_readonly(filled, f"SHOW TABLES FROM {db}")["rows"]
    assert ["requests"] in run_readonly(filled, "SHOW TABLES")["rows"]  # the hub's database is the current one
    described = run_readonly(filled, f"DESCRIBE {db}.requests")
    assert described["rows"][0][:2] == ["event_id", "UUID"]
    assert run_readonly(filled, f"EXPLAIN SELECT count() FROM {db}.requests")["row_count"] > 0
    assert run_readonly(filled, f"SELECT count() FROM system.columns WHERE database = '{db}'")["rows"][0][0] > 10


def test_the_row_limit_truncates_and_says_so(filled):
    result = run_readonly(filled, "SELECT number FROM system.numbers LIMIT 1000000", max_rows=100)
    assert result["row_count"] == 100 and result["truncated"] is True
    assert result["rows"][:3] == [[0], [1], [2]]
    exact = run_readonly(filled, "SELECT number FROM numbers(100)", max_rows=100)
    assert exact["row_count"] == 100 and exact["truncated"] is False
    one_more = run_readonly(filled, "SELECT number FROM numbers(101)", max_rows=100)
    assert one_more["row_count"] == 100 and one_more["truncated"] is True
    # the limit is on the answer only, not on subqueries
    assert run_readonly(filled, "SELECT count() FROM (SELECT number FROM numbers(100000))", max_rows=10)["rows"] == [
        [100000]]


def test_the_time_limit_stops_a_long_query(filled):
    with pytest.raises(QueryFailed, match="longer than 1 s"):
        run_readonly(filled, "SELECT count() FROM numbers(100000000000)", max_seconds=1)


REFUSED = [
    "INSERT INTO {db}.requests (route) VALUES ('/x')",
    "INSERT INTO {db}.requests SELECT * FROM {db}.requests",
    "ALTER TABLE {db}.requests DELETE WHERE 1",
    "DROP TABLE {db}.requests",
    "TRUNCATE TABLE {db}.requests",
    "SELECT 1; DROP TABLE {db}.requests",
    "DR/**/OP TABLE {db}.requests",
    "WITH x AS (SELECT 1) INSERT INTO {db}.requests (route) SELECT '/x'",
    "SELECT 1 SETTINGS readonly = 0",
    "RENAME TABLE {db}.requests TO {db}.gone",
    "OPTIMIZE TABLE {db}.requests FINAL",
    "DELETE FROM {db}.requests WHERE 1",
]


@pytest.mark.parametrize("template", REFUSED)
def test_refused_queries_leave_the_store_unchanged(filled, template):
    before = count(filled)
    with pytest.raises(QueryRefused):
        run_readonly(filled, template.format(db=filled.database))
    assert count(filled) == before == 50


BYPASS = [
    ("INSERT INTO {db}.requests (route) VALUES ('/x')", "read-only"),
    ("INSERT INTO {db}.requests (route) SELECT '/x'", "read-only"),
    ("ALTER TABLE {db}.requests DELETE WHERE 1", "read-only"),
    ("DROP TABLE {db}.requests", "read-only"),
    ("TRUNCATE TABLE {db}.requests", "read-only"),
    ("CREATE TABLE {db}.extra (a UInt8) ENGINE = Memory", "read-only"),
    ("SELECT count() FROM {db}.requests SETTINGS readonly = 0", "read-only"),
    ("SELECT number FROM numbers(1000) SETTINGS max_result_rows = 0", "read-only"),
    ("SELECT * FROM file('/etc/passwd', 'LineAsString')", "read-only"),
    ("SELECT * FROM url('http://127.0.0.1:9/', 'LineAsString')", "read-only"),
    ("SELECT name FROM system.users", "privileges"),
]


@pytest.mark.parametrize("template,reason", BYPASS)
def test_the_engine_refuses_writes_even_when_the_guard_is_bypassed(filled, template, reason):
    before = count(filled)
    with pytest.raises(QueryFailed, match=reason):
        execute_readonly(filled, template.format(db=filled.database), max_rows=100, max_seconds=10)
    assert count(filled) == before == 50
    # the hub's own (writing) connection is untouched by the read-only one
    assert filled.scalar("SELECT getSetting('readonly')") == 0
    filled.insert(f"{filled.database}.dead_letters", [[dt.datetime.now(dt.timezone.utc), "t", 0, 0, -1, "r", "", ""]],
                  ["dead_time", "source_topic", "source_partition", "source_offset", "source_index", "reason", "key",
                   "value"])


def test_the_engine_keeps_its_limits_when_the_guard_is_bypassed(filled):
    result = execute_readonly(filled, "SELECT getSetting('readonly'), getSetting('max_execution_time')",
                              max_rows=10, max_seconds=7)
    assert result["rows"] == [[1, 7.0]]
    big = execute_readonly(filled, "SELECT number FROM system.numbers LIMIT 1000000", max_rows=10, max_seconds=10)
    assert big["row_count"] == 10 and big["truncated"] is True


def test_a_query_waits_for_a_turn_while_others_run_and_gives_up_after_its_time_limit(filled):
    from hub.sql import guard

    held = [guard._TURNS.acquire(timeout=10) for _ in range(guard.MAX_CONCURRENT)]  # as if others ran
    try:
        assert all(held)
        with pytest.raises(QueryFailed, match="other queries kept running for 1 s"):
            run_readonly(filled, "SELECT 1", max_seconds=1)
    finally:
        for _ in held:
            guard._TURNS.release()
    assert run_readonly(filled, "SELECT 1", max_seconds=1)["rows"] == [[1]]
