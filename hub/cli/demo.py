"""``hub demo``: a whole gameday on the embedded stack, from set-up to the report."""

from __future__ import annotations

import argparse
from pathlib import Path

from hub.settings import Settings


def register(sub: argparse._SubParsersAction) -> None:
    from hub.demo.run import DEFAULT_HTTP_PORT, DEFAULT_KAFKA_PORT, DEFAULT_PORT_BASE, DEFAULT_STORE_PORT

    p = sub.add_parser(
        "demo", help="run a whole scripted gameday: stack, backends, gateway, load, a fault, the abort, the report",
        description="Start the embedded stack (as `hub up`, in its own home and on its own ports), the example "
                    "backends of examples/gameday, `hub gateway` in front of them and a load generator; run the "
                    "example experiment (create, start, baseline, injection) and make the primary fail on "
                    "/appointments/{id} until the abort rule fires and the halt target removes the fault; then "
                    "write the report and the dashboards and print where to look. Ctrl-C stops everything it "
                    "started. See docs/demo.md.")
    p.add_argument("--home", type=Path, default=None, metavar="DIR",
                   help="the demo's hub home (default <HUB_HOME>/demo); its hub.env keeps the demo's ports")
    p.add_argument("--out", type=Path, default=None, metavar="DIR",
                   help="where the run's report, dashboards and ground truth go (default <home>/runs/<experiment>)")
    p.add_argument("--duration", type=float, default=None, metavar="SECONDS",
                   help="planned length of the scripted run (default 90; the baseline is about a third)")
    p.add_argument("--short", action="store_true", help="a short run (40 s planned, 30 requests/s), as the tests use")
    p.add_argument("--rate", type=float, default=None, metavar="N", help="requests per second (default 40)")
    p.add_argument("--fault-rate", type=float, default=0.6, metavar="P",
                   help="share of GET /appointments/{id} the primary fails while the fault is on (default 0.6)")
    p.add_argument("--kafka-port", type=int, default=DEFAULT_KAFKA_PORT,
                   help=f"port of the demo's embedded broker (default {DEFAULT_KAFKA_PORT}; the controller uses the next)")
    p.add_argument("--http-port", type=int, default=DEFAULT_HTTP_PORT,
                   help=f"port of the demo's hub HTTP endpoint (default {DEFAULT_HTTP_PORT})")
    p.add_argument("--store-port", type=int, default=DEFAULT_STORE_PORT,
                   help=f"port of the demo store's ClickHouse endpoint for Grafana (default {DEFAULT_STORE_PORT})")
    p.add_argument("--port-base", type=int, default=DEFAULT_PORT_BASE,
                   help=f"port of the gateway; the backends and the fault switch take the next five "
                        f"(default {DEFAULT_PORT_BASE})")
    p.add_argument("--stop", action="store_true", help="stop the demo's hub at the end (default: keep it for SQL)")
    p.set_defaults(func=cmd_demo)


def cmd_demo(args, settings: Settings) -> int:
    from hub.demo.run import Demo, DemoOptions
    from hub.errors import UserError

    if args.fault_rate <= 0 or args.fault_rate > 1:
        raise UserError("--fault-rate takes a share in (0, 1]")
    duration = args.duration if args.duration is not None else (40.0 if args.short else 90.0)
    rate = args.rate if args.rate is not None else (30.0 if args.short else 40.0)
    if duration <= 0 or rate <= 0:
        raise UserError("--duration and --rate take positive numbers")
    options = DemoOptions(home=(args.home or settings.home_dir / "demo").expanduser().resolve(), out=args.out,
                          duration=duration, rate=rate, fault_rate=args.fault_rate, kafka_port=args.kafka_port,
                          http_port=args.http_port, port_base=args.port_base, store_port=args.store_port,
                          stop=args.stop)
    return Demo(options, say=lambda line: print(line, flush=True)).run()
