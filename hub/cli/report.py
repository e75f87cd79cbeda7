"""``hub report ID``: the after-action report of an experiment, as Markdown, HTML and PNG plots."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from hub.errors import HubError, UserError
from hub.settings import Settings


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("report", help="write the after-action report of an experiment (Markdown, HTML, PNG plots)",
                       description="Gather an experiment's plan, telemetry, faults, alerts and notes through "
                                   "read-only SQL (through the running hub, or on the store when none runs) and "
                                   "write report.md, report.html and the plots they show into a folder.")
    p.add_argument("experiment", metavar="ID", help="the experiment id")
    p.add_argument("--out", metavar="DIR", default=None, help="folder to write into (default ./report-ID)")
    p.add_argument("--source", default="auto", metavar="SOURCE",
                   help="which request legs to count: auto (the gateway's when the experiment has any, else all; "
                        "the default), all (traffic recorded twice counts twice), gateway, vegeta or emit")
    p.add_argument("--format", default="md,html", metavar="md,html",
                   help="comma-separated formats to write: md, html or both (default md,html); plots always")
    p.set_defaults(func=cmd_report)


def cmd_report(args, settings: Settings) -> int:
    from hub.cli.data import run_query
    from hub.abort.sources import parse_selection
    from hub.report import FORMATS, build_report, write_report

    formats = [f.strip().lower() for f in args.format.split(",") if f.strip()]
    bad = [f for f in formats if f not in FORMATS]
    if bad or not formats:
        raise UserError(f"--format takes md, html or md,html, not {args.format!r}")
    out = Path(args.out or f"report-{args.experiment}")

    def say(line: str) -> None:
        print(f"... {line}", file=sys.stderr, flush=True)

    def query(sql: str) -> dict:
        try:
            return run_query(settings, sql)
        except UserError:
            raise
        except HubError as exc:
            raise HubError(f"report query failed: {exc}") from None

    report = build_report(args.experiment, query, settings.database, progress=say,
                          sources=parse_selection(args.source))
    written = write_report(report, out, formats, progress=say)
    for path in written:
        print(path)
    breached = len({m.name for m in report.breaches})
    print(f"report of {args.experiment} written to {out}/ ({len(written)} files; "
          f"{breached} measurement(s) breached, {len(report.faults)} fault(s), {len(report.follow_ups)} follow-up(s))",
          file=sys.stderr)
    return 0
