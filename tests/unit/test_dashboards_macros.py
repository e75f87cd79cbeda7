"""The plugin's macro expansion, as ``dashboards.macros`` reproduces it for the query tests."""

from __future__ import annotations

import datetime as dt

import pytest

from dashboards.macros import ALL, MacroError, Variable, conditional_all, expand, interpolate

FROM = dt.datetime(2026, 3, 1, 10, 0, 0, tzinfo=dt.timezone.utc)
TO = dt.datetime(2026, 3, 1, 10, 30, 0, 500000, tzinfo=dt.timezone.utc)


def test_backend_macros_expand_as_the_plugin_writes_them():
    sql = ("SELECT $__timeInterval(t) AS time, count() / $__interval_s FROM x WHERE $__timeFilter(t) "
           "AND $__timeFilter_ms(u) AND d >= $__fromTime AND d <= $__toTime AND m <= $__toTime_ms "
           "AND $__dateFilter(day) GROUP BY $__timeInterval_ms(t)")
    out = expand(sql, time_from=FROM, time_to=TO, interval_s=15)
    f, t = int(FROM.timestamp()), int(TO.timestamp())
    assert out == (f"SELECT toStartOfInterval(toDateTime(t), INTERVAL 15 second) AS time, count() / 15 FROM x "
                   f"WHERE t >= toDateTime({f}) AND t <= toDateTime({t}) "
                   f"AND u >= fromUnixTimestamp64Milli({f * 1000}) AND u <= fromUnixTimestamp64Milli({t * 1000 + 500}) "
                   f"AND d >= toDateTime({f}) AND d <= toDateTime({t}) AND m <= fromUnixTimestamp64Milli({t * 1000 + 500}) "
                   f"AND day >= toDate('2026-03-01') AND day <= toDate('2026-03-01') "
                   f"GROUP BY toStartOfInterval(toDateTime64(t, 3), INTERVAL 15000 millisecond)")


def test_interval_is_at_least_one_second():
    assert expand("$__interval_s", time_from=FROM, time_to=TO, interval_s=0.2) == "1"


def test_conditional_all_drops_the_condition_when_all_is_selected():
    sql = "WHERE $__conditionalAll(route IN (${route:singlequote}), $route) AND x"
    assert conditional_all(sql, {"route": Variable(ALL, ["/a", "/b"])}) == "WHERE 1=1 AND x"
    kept = conditional_all(sql, {"route": Variable(["/a"])})
    assert kept == "WHERE route IN (${route:singlequote}) AND x"
    assert interpolate(kept, {"route": Variable(["/a", "/b'c"])}) == "WHERE route IN ('/a','/b\\'c') AND x"


def test_all_without_conditional_all_is_every_option():
    assert interpolate("IN (${leg:singlequote})", {"leg": Variable(ALL, ["canary", "primary"])}) == \
        "IN ('canary','primary')"
    assert interpolate("$leg", {"leg": Variable(["a", "b"])}) == "'a','b'"
    assert interpolate("$leg", {"leg": Variable("a")}) == "a"
    assert interpolate("$__timeFilter(t) $unknown", {}) == "$__timeFilter(t) $unknown"


def test_macro_arguments_with_parentheses_are_refused_like_the_backend_does():
    with pytest.raises(MacroError):
        expand("WHERE $__timeFilter(toDateTime(t))", time_from=FROM, time_to=TO)


def test_every_generated_query_expands_completely():
    from dashboards.config import grafana_config
    from dashboards.experiment import experiment_dashboard
    from hub.experiments.definition import load_definition
    from hub.settings import load_settings
    from pathlib import Path

    defn = load_definition(Path(__file__).resolve().parents[2] / "examples/experiments/patient-api-db-failover.yaml")
    d = experiment_dashboard(defn, grafana_config(load_settings({}), env={}), shadow_pairs=True)
    variables = {n: Variable(ALL, ["x"]) for n in ("route", "leg", "service")}
    sqls = [t["rawSql"] for p in d["panels"] for t in p.get("targets", [])]
    sqls += [a["target"]["rawSql"] for a in d["annotations"]["list"] if "rawSql" in a.get("target", {})]
    assert len(sqls) > 25
    for sql in sqls:
        out = expand(sql, time_from=FROM, time_to=TO, variables=variables)
        assert "$" not in out, out
