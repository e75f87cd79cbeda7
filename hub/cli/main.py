"""Entry point of the ``hub`` console script: parses arguments and turns user errors into one line."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from hub.errors import HubError, UserError
from hub.settings import load_settings

# Each module registers its commands with ``register(subparsers)`` and sets ``func`` to a
# handler ``func(args, settings) -> int``.
COMMAND_MODULES = (
    "hub.cli.stack",    # up, down, status, worker
    "hub.cli.kafka",    # kafka install|start|stop|status|topics
    "hub.cli.data",     # emit, sql, migrate, replay
    "hub.cli.experiment",  # experiment ..., inject, note
    "hub.cli.imports",  # import vegeta|dropwizard|chaostoolkit
    "hub.cli.dashboards",  # dashboards export|push|datasource-user
    "hub.cli.questions",  # questions list|ask
    "hub.cli.gateway",  # gateway, canary judge
    "hub.cli.report",   # report ID
    "hub.cli.findings",  # findings search|export
    "hub.cli.config",   # config
    "hub.cli.store",
    "hub.cli.demo",     # demo
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hub",
        description="gameday-hub: observe chaos experiments. Kafka in, ClickHouse out.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug detail to stderr")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:
                continue
            raise
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if not args.verbose:
        # Client libraries log connection failures themselves; the CLI reports them in one line.
        for name in ("aiokafka", "kafka"):
            logging.getLogger(name).setLevel(logging.CRITICAL)
    try:
        settings = load_settings()
        return int(args.func(args, settings) or 0)
    except UserError as exc:
        print(f"hub: error: {exc}", file=sys.stderr)
        return 2
    except HubError as exc:
        print(f"hub: {exc}", file=sys.stderr)
        return 1
    except RecursionError:  # a file or answer nested deeper than a reader checked for
        print("hub: error: the input is nested too deeply to read", file=sys.stderr)
        return 2
    except UnicodeDecodeError as exc:  # a file read as text that is not UTF-8
        print(f"hub: error: the input is not UTF-8 text (byte {exc.start})", file=sys.stderr)
        return 2
    except OSError as exc:  # a file that cannot be read or written
        where = f"{exc.filename}: " if getattr(exc, "filename", None) else ""
        print(f"hub: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("hub: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
