"""``hub config``: every setting with its environment variable, current value and meaning."""

from __future__ import annotations

import argparse
import dataclasses

from hub.settings import Settings, describe
from hub.storage.client import redact_dsn


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("config", help="list every setting, its HUB_* variable, value and meaning")
    p.add_argument("--markdown", action="store_true", help="print the defaults as a Markdown table (for the README)")
    p.set_defaults(func=cmd_config)


def cmd_config(args, settings: Settings) -> int:
    if args.markdown:
        print("| variable | default | meaning |")
        print("|---|---|---|")
        for env, default, doc in describe():
            print(f"| `{env}` | `{default}` | {doc} |")
        return 0
    for f in dataclasses.fields(Settings):
        value = getattr(settings, f.name)
        if ("token" in f.name or "password" in f.name or f.name.endswith("_key")) and value:
            value = "***"
        elif f.name == "clickhouse_url" and value:
            value = redact_dsn(value)
        print(f"{f.metadata['env']}={value}")
        print(f"    {f.metadata['doc']}")
    return 0
