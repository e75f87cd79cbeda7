"""``hub findings search|export``: every note and surprise across experiments, searchable and exportable."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from hub.errors import HubError, UserError
from hub.settings import Settings


def _filters(p: argparse.ArgumentParser) -> None:
    p.add_argument("--text", metavar="T", help="words in the note, its expected/actual, or the experiment's title "
                                               "(case-insensitive)")
    p.add_argument("--tag", metavar="T", help="a tag of the note (case-insensitive)")
    p.add_argument("--service", metavar="S", help="a service: a tag of the note, or a service the experiment targeted")
    p.add_argument("--since", metavar="ISO", help="notes written at or after this time (UTC unless it has an offset)")
    p.add_argument("--until", metavar="ISO", help="notes written at or before this time")
    p.add_argument("--experiment", metavar="ID", help="only this experiment's notes")
    p.add_argument("--kind", choices=("observation", "surprise"), help="only observations, or only surprises")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("findings", help="search and export every note and surprise across experiments",
                       description="The findings repository: every observation and surprise written during "
                                   "experiments, with what was expected and what happened.")
    fsub = p.add_subparsers(dest="findings_command", metavar="SUBCOMMAND")
    fsub.required = True
    s = fsub.add_parser("search", help="findings matching every filter given, oldest first")
    _filters(s)
    s.add_argument("--format", choices=("table", "csv", "json", "md"), default="table",
                   help="output format (default table)")
    s.set_defaults(func=cmd_search)
    e = fsub.add_parser("export", help="write the findings (all, or those matching the filters) to a file")
    e.add_argument("file", metavar="FILE", help="where to write; the format follows .csv, .json or .md")
    _filters(e)
    e.add_argument("--format", choices=("csv", "json", "md"), default=None,
                   help="format, when the file name does not say it")
    e.set_defaults(func=cmd_export)


def _search(args, settings: Settings):
    from hub.cli.data import run_query
    from hub.findings import search_findings

    def query(sql: str) -> dict:
        try:
            return run_query(settings, sql)
        except UserError:
            raise
        except HubError as exc:
            raise HubError(f"findings query failed: {exc}") from None

    return search_findings(query, settings.database, text=args.text, tag=args.tag, service=args.service,
                           since=args.since, until=args.until, experiment=args.experiment, kind=args.kind)


def cmd_search(args, settings: Settings) -> int:
    from hub.findings import export, to_table

    findings = _search(args, settings)
    sys.stdout.write(to_table(findings) if args.format == "table" else export(findings, args.format))
    return 0


def cmd_export(args, settings: Settings) -> int:
    from hub.findings import export

    path = Path(args.file)
    fmt = args.format or {".csv": "csv", ".json": "json", ".md": "md", ".markdown": "md"}.get(path.suffix.lower())
    if fmt is None:
        raise UserError(f"cannot tell the format of {path} from its name: use .csv, .json or .md, or --format")
    findings = _search(args, settings)
    if path.parent and not path.parent.exists():
        raise UserError(f"folder {path.parent} does not exist")
    path.write_text(export(findings, fmt), encoding="utf-8")
    print(f"{len(findings)} finding(s) written to {path} ({fmt})")
    return 0
