"""The read-only ClickHouse user for Grafana's datasource, on the embedded engine.

chDB has no user directories (no access management: it refuses CREATE ROLE/USER), so here the
statements are checked by the engine's parser, and the profile's ``readonly = 1`` is checked as a
query setting: reading the hub's tables works, writing and DDL are refused. On a server the same
statements create the role, profile and user (``hub dashboards datasource-user --execute``).
"""

from __future__ import annotations

import argparse

import pytest

from dashboards.datasource_user import datasource_user_sql, redacted
from hub.cli import dashboards as cli
from hub.errors import UserError

pytestmark = [pytest.mark.clickhouse]


def test_the_statements_parse_and_grant_select_on_the_hub_database_only(store):
    statements = datasource_user_sql(store.database, "hub_grafana", "pa'ss")
    for statement in statements:
        formatted = store.query("SELECT formatQuery({q:String})", parameters={"q": statement}).result_rows[0][0]
        assert formatted  # the engine's parser accepts it
    assert statements[1] == f"GRANT SELECT ON {store.database}.* TO hub_grafana_role"
    assert "readonly = 1" in statements[2] and "CHANGEABLE_IN_READONLY" in statements[2]
    assert not any("INSERT" in s or "ALL" in s.split() for s in statements)
    assert all("pa\\'ss" not in s and "BY '***'" in s for s in redacted(statements) if "IDENTIFIED" in s)


def test_chdb_has_no_access_management_so_the_sql_is_for_a_server(store):
    with pytest.raises(Exception, match="ACCESS_DENIED|privileges|access storage|user directories"):
        store.command("CREATE ROLE IF NOT EXISTS hub_grafana_probe_role")


def test_readonly_1_reads_but_cannot_write(store):
    # As a query-level SETTINGS clause: a session setting would stick to chDB's one shared session.
    db = store.database
    assert store.query(f"SELECT count() FROM {db}.requests SETTINGS readonly = 1").result_rows[0][0] == 0
    for statement in (f"INSERT INTO {db}.alerts (kind, experiment_id) SETTINGS readonly = 1 SELECT 'alert', 'x'",
                      f"CREATE TABLE {db}.grafana_probe (a UInt8) ENGINE = MergeTree ORDER BY a SETTINGS readonly = 1",
                      f"DROP TABLE {db}.requests SETTINGS readonly = 1"):
        with pytest.raises(Exception, match="READONLY|readonly"):
            store.command(statement)
    assert "requests" in {r[0] for r in store.query(f"SHOW TABLES FROM {db}").result_rows}
    assert store.query(f"SELECT count() FROM {db}.alerts").result_rows[0][0] == 0
    store.command(f"INSERT INTO {db}.alerts (kind, experiment_id) SELECT 'alert', 'x'")  # the session stays writable
    assert store.query(f"SELECT count() FROM {db}.alerts").result_rows[0][0] == 1


def test_the_command_prints_the_sql_and_refuses_to_execute_on_the_embedded_engine(hub_settings, capsys):
    p = argparse.ArgumentParser(prog="hub")
    cli.register(p.add_subparsers(dest="command"))
    args = p.parse_args(["dashboards", "datasource-user", "--print-sql", "--user", "grafana_ro"])
    assert args.func(args, hub_settings) == 0
    out = capsys.readouterr().out
    assert f"GRANT SELECT ON {hub_settings.database}.* TO grafana_ro_role;" in out
    assert "change-me" in out and "no password given" in out
    args = p.parse_args(["dashboards", "datasource-user", "--execute", "--password", "x"])
    with pytest.raises(UserError, match="embedded engine"):
        args.func(args, hub_settings)
    args = p.parse_args(["dashboards", "datasource-user", "--user", "bad name"])
    with pytest.raises(UserError, match="user 'bad name'"):
        args.func(args, hub_settings)
