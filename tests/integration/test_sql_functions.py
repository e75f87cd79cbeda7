"""The SQL interface's allow-list against the real engine: every row of ``system.table_functions``
and ``system.functions`` is classified (allowed, or refused with its reason), a refused one is
refused by the guard however it is spelled, and the calls that read server state or files, which
the engine itself answers even on a read-only connection, never reach it."""

from __future__ import annotations

import re

import pytest

from hub.sql import QueryFailed, QueryRefused, check_query, execute_readonly, run_readonly
from hub.sql.functions import (AGGREGATES, ALLOWED, ALLOWED_TABLE_FUNCTIONS, COMBINATORS, KEYWORDS, REFUSED,
                               REFUSED_TABLE_FUNCTIONS, TYPE_NAMES, call_refusal, unclassified)

pytestmark = pytest.mark.clickhouse

# Names of functions that read server state, files or the network, or sound as if they might:
# each must be classified explicitly (listed, not only by a pattern), and the ones refused below
# must be refused.
STATEFUL = re.compile(r"^(file|url|s3|hdfs|azure|remote|mysql|postgres|mergetree|getserver|getmacro|dict|region|"
                      r"host|fqdn|filesystem|current|enabled|default.*(roles|profiles)|ai[A-Z]|sleep|address|"
                      r"showcert|server)|setting", re.IGNORECASE)
MUST_BE_REFUSED = ("file", "filesystemAvailable", "filesystemCapacity", "getServerSetting", "getMergeTreeSetting",
                   "getMacro", "hostName", "FQDN", "dictGet", "currentUser", "currentRoles", "showCertificate",
                   "getClientHTTPHeader", "currentRequestURL", "sleep", "sleepEachRow", "mergeTreePartInfo",
                   "serverUUID", "aiGenerate", "generateSerialID", "logTrace", "hasColumnInTable", "joinGet")
TABLE_FUNCTIONS_MUST_BE_REFUSED = ("file", "url", "s3", "hdfs", "remote", "remoteSecure", "mysql", "postgresql",
                                   "mergeTreeIndex", "mergeTreeProjection", "merge", "loop", "cluster",
                                   "executable", "python", "filesystem", "input", "dictionary", "sqlite")


def names(store, table: str) -> list[str]:
    return [r[0] for r in store.query(f"SELECT name FROM system.{table} ORDER BY name").result_rows]


def test_every_table_function_of_the_engine_is_allowed_or_refused_with_a_reason(store):
    rows = names(store, "table_functions")
    assert len(rows) > 50
    assert unclassified([], rows)[1] == [], "table functions to review and classify in hub/sql/functions.py"
    for name in rows:
        allowed = name in ALLOWED_TABLE_FUNCTIONS
        assert allowed != (name in REFUSED_TABLE_FUNCTIONS), name
        for spelled in (name, name.upper(), f"`{name}`"):
            query = f"SELECT * FROM {spelled}(1)"
            if allowed:
                assert check_query(query)
            else:
                with pytest.raises(QueryRefused, match=re.escape(REFUSED_TABLE_FUNCTIONS[name])):
                    check_query(query)
    for name in TABLE_FUNCTIONS_MUST_BE_REFUSED:
        assert name in rows and name in REFUSED_TABLE_FUNCTIONS, name


def test_every_function_of_the_engine_is_allowed_or_refused_with_a_reason(store):
    rows = names(store, "functions")
    assert len(rows) > 1000
    assert unclassified(rows, [])[0] == [], "functions to review and classify in hub/sql/functions.py"
    for name in rows:
        allowed = name in ALLOWED or name in AGGREGATES
        assert allowed != (name in REFUSED), name
        if STATEFUL.search(name):  # classified one by one, by name
            assert name in ALLOWED or name in REFUSED, name
        if not allowed:
            for spelled in (name, name.upper(), f'"{name}"'):
                with pytest.raises(QueryRefused) as caught:
                    check_query(f"SELECT {spelled}('x')")
                assert caught.value.rule == "function" and call_refusal(name) in str(caught.value)
    for name in MUST_BE_REFUSED:
        assert name in rows and name in REFUSED, name
    aggregates = {r[0] for r in store.query("SELECT name FROM system.functions WHERE is_aggregate").result_rows}
    assert {n for n in aggregates if n not in REFUSED} == set(AGGREGATES)
    assert set(COMBINATORS) == set(names(store, "aggregate_function_combinators"))


def test_no_refused_name_is_let_through_by_another_list_in_another_letter_case():
    refused = {n.lower() for n in set(REFUSED) | set(REFUSED_TABLE_FUNCTIONS)}
    for listed in (ALLOWED, AGGREGATES, ALLOWED_TABLE_FUNCTIONS, TYPE_NAMES, KEYWORDS):
        assert not refused & {n.lower() for n in listed}
    assert all(call_refusal(n) for n in set(REFUSED) | set(REFUSED_TABLE_FUNCTIONS))


@pytest.mark.parametrize("query", [
    "SELECT * FROM mergeTreeIndex(currentDatabase(), 'requests')",
    "SELECT getServerSetting('path')",
    "SELECT hostName(), FQDN()",
    "SELECT getMergeTreeSetting('index_granularity')",
])
def test_calls_the_engine_would_answer_on_a_read_only_connection_are_refused_by_the_guard(store, query):
    # The engine itself answers them (the guard is the only layer that stops them)...
    assert execute_readonly(store, query, max_rows=10, max_seconds=10)["row_count"] >= 0
    # ...and the guard refuses them before they run.
    with pytest.raises(QueryRefused) as caught:
        run_readonly(store, query)
    assert caught.value.rule == "function"


def test_allowed_calls_run_on_the_engine(store):
    db = store.database
    result = run_readonly(store, f"""
        SELECT countIf(status >= 500) AS errors, quantilesTimingIf(0.5, 0.99)(latency_ms, status < 500) AS q,
               sumArray([1, 2]) AS s, avgOrNull(latency_ms) AS a, uniqExactIf(route, 1) AS u,
               CAST(1 AS Nullable(Decimal(10, 2))) AS d, toDateTime64(0, 3, 'UTC') AS t,
               getSetting('max_result_rows') AS limit_rows, currentDatabase() AS db
        FROM {db}.requests WHERE (status >= 0 OR error != '') AND route NOT IN ('x')""")
    row = dict(zip(result["columns"], result["rows"][0]))
    assert row["errors"] == 0 and row["s"] == 0 and row["db"] == db and row["limit_rows"] > 0  # no rows yet
    assert run_readonly(store, "SELECT sum(number) FROM numbers(10) UNION ALL SELECT count() FROM generateSeries(1, 3)"
                        )["rows"] in ([[45], [3]], [[3], [45]])
    with pytest.raises(QueryFailed):  # allowed by the guard, unknown to the engine: the engine says so
        run_readonly(store, "SELECT TODATE(1)")


def test_the_settings_table_is_readable_through_the_guard(store):
    result = run_readonly(store, "SELECT name FROM system.settings WHERE name = 'max_result_rows'")
    assert [list(r) for r in result["rows"]] == [["max_result_rows"]]
