"""``hub gateway --config FILE`` (the traffic-management proxy) and ``hub canary judge ID``."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any, Callable

from hub.errors import HubError, UserError
from hub.settings import Settings


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("gateway", help="run the traffic-management gateway (chaining, canary, shadowing)",
                       description="A reverse proxy configured by a YAML file (see hub/gateway/README.md). "
                                   "Emits request legs to HUB_TOPIC_REQUESTS and shadow pairs to hub.pairs.")
    p.add_argument("--config", required=True, metavar="FILE", help="the gateway's YAML configuration")
    p.add_argument("--check", action="store_true", help="only check the configuration and print a summary")
    p.set_defaults(func=cmd_gateway)

    p = sub.add_parser("canary", help="judge a canary against its baseline")
    csub = p.add_subparsers(dest="canary_command", metavar="SUBCOMMAND")
    csub.required = True
    j = csub.add_parser("judge", help="Mann-Whitney U on latency and a two-proportion test on errors, per route",
                        description="Compare an experiment's canary legs with its primary legs per route; store the "
                                    "verdicts (pass|fail|inconclusive, with confidence) in canary_verdicts. "
                                    "Asks the running hub (which owns the store) when there is one, otherwise "
                                    "opens the store directly.")
    j.add_argument("experiment_id", metavar="ID")
    j.add_argument("--gateway", default=None, help="only this gateway's legs")
    j.add_argument("--alpha", type=float, default=0.05, help="significance level (default 0.05)")
    j.add_argument("--min-delta", type=float, default=0.147,
                   help="smallest latency effect (Cliff's delta) that matters (default 0.147)")
    j.add_argument("--min-h", type=float, default=0.2, help="smallest error-rate effect (Cohen's h) (default 0.2)")
    j.add_argument("--min-samples", type=int, default=20, help="fewer legs on a side: inconclusive (default 20)")
    j.add_argument("--no-store", action="store_true", help="print only; do not store the verdicts")
    j.add_argument("--json", action="store_true", help="print JSON")
    j.set_defaults(func=cmd_canary_judge)


def cmd_gateway(args, settings: Settings) -> int:
    from hub.gateway.config import config_warnings, is_loopback, load_config
    from hub.gateway.proxy import serve

    config = load_config(args.config)
    for host, what in ((config.host, "listen"), (config.admin_host, "admin_listen")):
        if host and not is_loopback(host):
            print(f"warning: gateway.{what} {host} is not a loopback address: the gateway speaks plain HTTP and "
                  "trusts no client; put TLS (a load balancer or a TLS-terminating proxy) in front of it",
                  file=sys.stderr, flush=True)
    for warning in config_warnings(config):
        print(f"warning: {warning}", file=sys.stderr, flush=True)
    if args.check:
        print(f"gateway {config.name} on {config.host}:{config.port}: {len(config.backends)} backends, "
              f"{len(config.routes)} routes")
        return 0

    def ready(address):
        print(f"gateway {config.name} listening on http://{address[0]}:{address[1]}", flush=True)

    run: Callable[..., Any]  # runs a coroutine on a new event loop
    try:
        import uvloop  # faster when installed; optional
        run = uvloop.run
    except ImportError:
        run = asyncio.run
    try:
        run(serve(config, bootstrap=settings.bootstrap, requests_topic=settings.topic_requests, ready=ready,
                  stopped=lambda line: print(line, flush=True)))
    except KeyboardInterrupt:
        pass
    return 0


def judge_verdicts(settings: Settings, experiment_id: str, options: dict, store_them: bool) -> list[dict]:
    """Verdicts as dicts: through the running hub's HTTP endpoint (the process that owns the store),
    or on the store directly when no hub runs, as ``hub sql`` chooses."""
    from urllib.parse import quote

    from hub.runtime.stack import Stack

    stack = Stack(settings)
    if stack.worker_pid() is not None or stack.hub_answers():
        try:
            answer = stack.api(f"/v1/experiments/{quote(experiment_id, safe='')}/canary-judge",
                               {**options, "store": store_them}, timeout=300)
        except HubError as exc:
            raise HubError(f"canary judgment through the hub at {settings.http_url} failed: {exc}") from None
        return answer["verdicts"]
    from hub.api.canary import verdict_json
    from hub.api.server import first_line
    from hub.shadow.canary import judge_canary, store_verdicts
    from hub.storage.client import open_store
    from hub.storage.migrations import migrate

    store = open_store(settings)
    try:
        migrate(store, settings)  # as the worker does at start: requests and canary_verdicts exist
        verdicts = judge_canary(store, experiment_id, **options)
        if store_them:
            store_verdicts(store, verdicts)
    except HubError:
        raise
    except Exception as exc:
        raise HubError(f"canary judgment failed: {first_line(exc)}") from None
    finally:
        store.close()
    return [verdict_json(v) for v in verdicts]


def cmd_canary_judge(args, settings: Settings) -> int:
    from hub.api.canary import judge_options

    try:
        options = judge_options({"gateway": args.gateway, "alpha": args.alpha, "min_delta": args.min_delta,
                                 "min_h": args.min_h, "min_samples": args.min_samples})
    except ValueError as exc:
        raise UserError(f"--{str(exc).replace('_', '-')}") from None
    verdicts = judge_verdicts(settings, args.experiment_id, options, not args.no_store)
    if args.json:
        print(json.dumps(verdicts, indent=2))
    elif not verdicts:
        print(f"no canary legs for experiment {args.experiment_id}")
    else:
        for v in verdicts:
            print(f"{v['route']:30} {v['metric']:10} {v['verdict']:12} confidence {v['confidence']:.3f}  "
                  f"p {v['p_value']:.4f}  {v['effect_kind']} {v['effect_size']:+.3f}  "
                  f"canary {v['canary_value']:.4g} (n={v['canary_samples']}) "
                  f"baseline {v['baseline_value']:.4g} (n={v['baseline_samples']})")
        if not args.no_store:
            print(f"stored {len(verdicts)} verdict(s) in {settings.database}.canary_verdicts")
    return 0
