"""``hub store serve``: share the embedded store between several hub processes on one host."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from hub.errors import UserError
from hub.settings import Settings


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "store", help="the store server: one embedded store shared by several workers on this host",
        description="Manage the store server. Only one process may open the embedded store (chDB), "
                    "so workers of a cluster on one host share it through `hub store serve`.")
    store_sub = parser.add_subparsers(dest="store_command", metavar="SUBCOMMAND")
    store_sub.required = True
    serve = store_sub.add_parser(
        "serve", help="own the embedded store and serve it over ClickHouse's HTTP interface (attached)",
        description="Open the embedded store (<HUB_HOME>/clickhouse, or --path) and answer ClickHouse's HTTP "
                    "interface (as clickhouse-connect, clickhouse-go v2 and @clickhouse/client use it), until "
                    "Ctrl-C or SIGTERM. The read-only user HUB_GRAFANA_CLICKHOUSE_USER (password "
                    "HUB_GRAFANA_CLICKHOUSE_PASSWORD, required off loopback) may only read. "
                    "Point every worker at it with HUB_CLICKHOUSE_URL=http://HOST:PORT. Every client must give "
                    "the token (HUB_STORE_TOKEN, else <HUB_HOME>/store-token, generated on the first start) as "
                    "its password; nobody may reach files, URLs or other servers through it. It is not a "
                    "ClickHouse server: statements run one at a time, nothing is replicated "
                    "(docs/store-server.md).")
    serve.add_argument("--host", help="address to listen on (default HUB_STORE_HOST, 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to listen on (default HUB_STORE_PORT, 18123)")
    serve.add_argument("--path", type=Path, help="data directory of the store (default <HUB_HOME>/clickhouse)")
    serve.set_defaults(func=cmd_serve)


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    from hub.storage.server import StoreError, endpoint_problem, endpoint_readers, serve
    from hub.storage.token import ensure_token, token_path

    host = args.host or settings.store_host
    port = settings.store_port if args.port is None else args.port
    path = (args.path or settings.clickhouse_path).expanduser().resolve()
    if not 0 < port < 65536:
        raise UserError(f"--port {port} is not a TCP port")
    problem = endpoint_problem(settings, host)  # off loopback: an explicit token and a reader's password
    if problem:
        raise UserError(problem)
    token = ensure_token(settings)  # HUB_STORE_TOKEN, or <home>/store-token, created on the first start
    logging.basicConfig(level=getattr(logging, settings.log_level.upper(), logging.INFO), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", force=True)
    logging.getLogger("hub.storage.server").setLevel(getattr(logging, settings.log_level.upper(), logging.INFO))

    def ready(url: str) -> None:
        where = "HUB_STORE_TOKEN" if settings.store_token else str(token_path(settings))
        print(f"store server: {path} on {url}; point the workers at it with HUB_CLICKHOUSE_URL={url} (hub "
              f"processes with this HUB_HOME read the token from {where}; any other client gives it as the "
              f"password: http://default:<token>@{url.split('://', 1)[1]}) (Ctrl-C stops)", flush=True)

    try:
        from hub.sql.guard import sql_limits

        serve(path, host, port, token=token, on_ready=ready, readers=endpoint_readers(settings),
              limits=sql_limits(settings))
    except StoreError as exc:
        message = exc.message
        if "lock" in message.lower() or "already running" in message.lower() or "EmbeddedServer" in message:
            message = (f"the store {path} is open in another process (a worker in embedded mode, or another "
                       "store server): stop it first")
        raise UserError(message) from None
    return 0
