"""``hub dashboards export|push|datasource-user``: Grafana dashboards generated from experiment definitions."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from hub.errors import HubError, UserError
from hub.settings import Settings

if TYPE_CHECKING:
    from hub.experiments.definition import ExperimentDefinition


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("dashboards", help="Grafana dashboards for experiments and the gameday room",
                       description="Dashboards generated from experiment definitions, querying ClickHouse through "
                                   "the grafana-clickhouse-datasource plugin. Grafana settings: HUB_GRAFANA_URL, "
                                   "HUB_GRAFANA_TOKEN, HUB_GRAFANA_FOLDER, HUB_GRAFANA_DATASOURCE (see dashboards/README.md).")
    cmds = p.add_subparsers(dest="dashboards_command", metavar="SUBCOMMAND")
    cmds.required = True

    def selection(c: argparse.ArgumentParser) -> None:
        c.add_argument("--experiment", action="append", default=[], metavar="ID",
                       help="an experiment from the log (repeatable; default: every experiment in the log, "
                            "unless --definition is given)")
        c.add_argument("--definition", action="append", default=[], metavar="FILE",
                       help="a definition file instead of the log (repeatable); its id names the dashboard")
        c.add_argument("--shadow-pairs", choices=("auto", "yes", "no"), default="auto",
                       help="draw the shadow comparison panels: auto asks the store whether shadow_pairs exists")
        c.add_argument("--alert-rules", action="store_true", help="also the abort rules as Grafana alert rules")
        c.add_argument("--source", default="auto", type=_selection, metavar="SOURCE",
                       help="which request legs the rule and steady-state panels count: auto (the gateway's when the experiment "
                            "has any, else all; the default), all (traffic recorded twice counts twice), "
                            "gateway, vegeta or emit")

    c = cmds.add_parser("export", help="write dashboards and provisioning YAML to a folder Grafana loads at start-up")
    c.add_argument("directory", help="the folder to write (created when missing)")
    selection(c)
    c.add_argument("--grafana-path", default=None,
                   help="where Grafana sees DIR/dashboards (default: its absolute path here)")
    c.set_defaults(func=cmd_export)

    c = cmds.add_parser("push", help="create the folder, the ClickHouse datasource and the dashboards in Grafana")
    selection(c)
    c.set_defaults(func=cmd_push)

    c = cmds.add_parser("datasource-user", help="SQL for a read-only ClickHouse user for Grafana's datasource")
    how = c.add_mutually_exclusive_group()
    how.add_argument("--print-sql", action="store_true", help="print the statements (the default)")
    how.add_argument("--execute", action="store_true", help="run them on the ClickHouse server (HUB_CLICKHOUSE_URL)")
    c.add_argument("--user", default=None, help="the user's name (default HUB_GRAFANA_CLICKHOUSE_USER)")
    c.add_argument("--password", default=None, help="its password (default HUB_GRAFANA_CLICKHOUSE_PASSWORD)")
    c.set_defaults(func=cmd_datasource_user)


def _definitions(args, settings: Settings) -> list[tuple[str, ExperimentDefinition]]:
    from hub.experiments.definition import load_definition

    out = []
    for path in args.definition:
        defn = load_definition(path)
        if not defn.id:
            raise UserError(f"{path}: the definition has no id; give it one (the dashboard is named after it)")
        out.append((defn.id, defn))
    if args.experiment or not args.definition:
        from hub.experiments.service import ExperimentService

        service = ExperimentService(settings)
        try:
            if args.experiment:
                out += [(eid, service.get(eid).definition) for eid in args.experiment]
            else:
                out += [(eid, state.definition) for eid, state in sorted(service.states().items())]
        finally:
            service.close()
    return out


def _shadow_pairs(args, settings: Settings) -> bool:
    if args.shadow_pairs != "auto":
        return args.shadow_pairs == "yes"
    from dashboards import queries as Q
    from hub.cli.data import run_query

    try:
        rows = run_query(settings, Q.shadow_pairs_columns(settings.database))["rows"]
    except HubError as exc:
        print(f"hub: cannot ask the store whether shadow_pairs exists ({exc}); drawing the note instead "
              f"(--shadow-pairs yes overrides)", file=sys.stderr)
        return False
    return set(Q.SHADOW_PAIR_COLUMNS) <= {r[0] for r in rows}


def _selection(text: str) -> str:
    from hub.abort.sources import parse_selection
    from hub.errors import UserError

    try:
        return parse_selection(text)
    except UserError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _generate(args, settings: Settings):
    from dashboards.alert_rules import alert_rules
    from dashboards.config import grafana_config
    from dashboards.experiment import experiment_dashboard
    from dashboards.overview import overview_dashboard

    cfg = grafana_config(settings)
    shadow = _shadow_pairs(args, settings)
    dashboards, rules = [overview_dashboard(cfg)], []
    for eid, defn in _definitions(args, settings):
        dashboards.append(experiment_dashboard(defn, cfg, experiment_id=eid, shadow_pairs=shadow, sources=args.source))
        if args.alert_rules:
            made, skipped = alert_rules(defn, cfg, experiment_id=eid, shadow_pairs=shadow, sources=args.source)
            rules += made
            for s in skipped:
                print(f"hub: alert rule left out: {eid}: {s}", file=sys.stderr)
    return cfg, dashboards, rules


def cmd_export(args, settings: Settings) -> int:
    from dashboards.provisioning import export

    cfg, dashboards, rules = _generate(args, settings)
    written = export(args.directory, dashboards, cfg, alert_rules=rules if args.alert_rules else None,
                     grafana_path=args.grafana_path)
    print(f"wrote {len(dashboards)} dashboards{f' and {len(rules)} alert rules' if args.alert_rules else ''} "
          f"({len(written)} files) to {args.directory}")
    return 0


def cmd_push(args, settings: Settings) -> int:
    from dashboards.publish import Publisher

    cfg, dashboards, rules = _generate(args, settings)
    publisher = Publisher(cfg)
    publisher.push(dashboards, rules)
    print(f"pushed {len(dashboards)} dashboards{f' and {len(rules)} alert rules' if rules else ''} to {cfg.url} "
          f"(folder {cfg.folder!r}, datasource {cfg.datasource!r})")
    for d in dashboards:
        print(f"  {cfg.url}/d/{d['uid']}  {d['title']}")
    return 0


def cmd_datasource_user(args, settings: Settings) -> int:
    from dashboards.config import grafana_config
    from dashboards.datasource_user import datasource_user_sql, redacted

    cfg = grafana_config(settings)
    user = args.user or cfg.clickhouse_user
    password = args.password if args.password is not None else cfg.clickhouse_password
    try:
        statements = datasource_user_sql(settings.database, user, password or None)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    if not args.execute:
        if not password:
            print("-- no password given (--password or HUB_GRAFANA_CLICKHOUSE_PASSWORD): replace 'change-me'")
        print(";\n".join(statements) + ";")
        return 0
    if settings.embedded_clickhouse or settings.clickhouse_dsn.startswith("chdb:"):
        raise UserError("the embedded engine (chDB) has no users or roles; run this against a ClickHouse server "
                        "(HUB_CLICKHOUSE_URL), or print the SQL with --print-sql")
    if not password:
        raise UserError("--execute needs a password (--password or HUB_GRAFANA_CLICKHOUSE_PASSWORD)")
    from hub.storage.client import open_store

    store = open_store(settings, create_database=False)
    try:
        for statement, shown in zip(statements, redacted(statements)):
            try:
                store.command(statement)
            except Exception as exc:
                raise HubError(f"{shown}: {str(exc).splitlines()[0]}") from None
    finally:
        store.close()
    print(f"user {user} can read {settings.database}.* (readonly = 1); give it to Grafana as "
          f"HUB_GRAFANA_CLICKHOUSE_USER / HUB_GRAFANA_CLICKHOUSE_PASSWORD")
    return 0
