"""``hub questions list`` and ``hub questions ask NAME --experiment ID``: the saved questions."""

from __future__ import annotations

import argparse
import json
import sys

from hub.errors import HubError, UserError
from hub.settings import Settings


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("questions", help="saved questions about an experiment (list, ask)",
                       description="Named SQL questions that take an experiment id and answer the usual "
                                   "questions after a run, through the running hub or on the store.")
    qsub = p.add_subparsers(dest="questions_command", metavar="SUBCOMMAND")
    qsub.required = True

    q = qsub.add_parser("list", help="every question with its description and parameters")
    q.add_argument("--json", action="store_true", help="print JSON")
    q.set_defaults(func=cmd_list)

    q = qsub.add_parser("ask", help="answer one question for an experiment")
    q.add_argument("name", help="the question, e.g. error-rate-by-phase (see `hub questions list`)")
    q.add_argument("--experiment", required=True, metavar="ID", help="the experiment id")
    q.add_argument("--param", action="append", default=[], metavar="K=V",
                   help="another parameter of the question (repeatable), e.g. --param baseline=steady")
    q.add_argument("--format", choices=("table", "csv", "json"), default="table",
                   help="output format (default table)")
    q.add_argument("--sql", action="store_true", help="print the SQL instead of running it")
    q.set_defaults(func=cmd_ask)


def cmd_list(args, settings: Settings) -> int:
    from hub.questions import QUESTIONS

    if args.json:
        print(json.dumps([{"name": q.name, "description": q.description,
                           "parameters": [{"name": p.name, "description": p.description, "default": p.default,
                                           "choices": list(p.choices)} for p in q.parameters]}
                          for q in QUESTIONS.values()], indent=2))
        return 0
    for q in QUESTIONS.values():
        print(f"{q.name}\n    {q.description}")
        for p in q.parameters:
            extra = " (required)" if p.default is None else f" (default {p.default})"
            if p.choices:
                extra += f", one of {', '.join(p.choices)}"
            print(f"    --{'experiment' if p.name == 'experiment' else 'param ' + p.name + '=...'}: "
                  f"{p.description}{extra}")
    return 0


def _params(args) -> dict[str, str]:
    params: dict[str, str] = {"experiment": args.experiment}
    for item in args.param:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UserError(f"--param expects KEY=VALUE, got {item!r}")
        params[key.strip().replace("-", "_")] = value
    return params


def cmd_ask(args, settings: Settings) -> int:
    from hub.cli.data import print_result, run_query
    from hub.questions import ask, get

    params = _params(args)
    if args.sql:
        print(get(args.name).render(settings.database, params))
        return 0

    def run(sql: str) -> dict:
        try:
            return run_query(settings, sql)
        except UserError:
            raise
        except HubError as exc:
            raise UserError(f"question {args.name} failed: {exc}") from None

    result = ask(args.name, params, settings.database, run)
    print_result(result, args.format)
    if result.get("truncated"):
        print(f"(only the first {result['row_count']:,} rows: the row limit HUB_SQL_MAX_ROWS was reached)",
              file=sys.stderr)
    return 0
