"""``hub up``, ``hub down``, ``hub status`` and ``hub worker``: the embedded stack's lifecycle."""

from __future__ import annotations

import argparse
import json

from hub.runtime.stack import Stack
from hub.settings import Settings


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("up", help="start the broker (unless HUB_KAFKA_BOOTSTRAP is set) and the worker",
                       description="Start the embedded stack in the background and return once it is ready. "
                                   "With the embedded store the worker also serves it over ClickHouse's HTTP "
                                   "interface on HUB_STORE_HOST:HUB_STORE_PORT for Grafana (read-only user "
                                   "HUB_GRAFANA_CLICKHOUSE_USER; HUB_STORE_ENDPOINT=false turns it off).")
    p.add_argument("--foreground", action="store_true",
                   help="run the worker attached to this terminal; Ctrl-C stops the worker and the broker")
    p.set_defaults(func=cmd_up)

    p = sub.add_parser("down", help="stop the worker and the embedded broker")
    p.set_defaults(func=cmd_down)

    p = sub.add_parser("status", help="show what runs: broker, worker, store, HTTP endpoint")
    p.add_argument("--json", action="store_true", help="print the status as JSON")
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("worker", help="run only the worker, attached (the broker must be reachable)")
    p.set_defaults(func=cmd_worker)


def cmd_up(args, settings: Settings) -> int:
    if settings.embedded_clickhouse and settings.store_endpoint:
        from hub.errors import UserError
        from hub.storage.server import endpoint_problem

        problem = endpoint_problem(settings)  # the store's ClickHouse endpoint off loopback
        if problem:
            raise UserError(problem + " (or set HUB_STORE_ENDPOINT=false)")
    stack = Stack(settings)
    if not args.foreground:
        stack.up()
        return 0
    from streams.worker import run

    stack.start_kafka(print)
    print(f"running the worker attached; HTTP endpoint {settings.http_url}; Ctrl-C stops")
    try:
        run(settings)
    finally:
        if settings.embedded_kafka:
            stack.kafka.stop()
    return 0


def cmd_down(args, settings: Settings) -> int:
    Stack(settings).down()
    return 0


def cmd_worker(args, settings: Settings) -> int:
    from streams.worker import run

    run(settings)
    return 0


def cmd_status(args, settings: Settings) -> int:
    info = Stack(settings).status()
    if args.json:
        print(json.dumps(info, indent=2, default=str))
        return 0
    kafka = info["kafka"]
    if kafka.get("external"):
        print(f"kafka:  external cluster {kafka['bootstrap']}")
    else:
        state = f"running (pid {kafka.get('pid')})" if kafka.get("running") else "stopped"
        print(f"kafka:  {state} at {kafka.get('bootstrap')}, version {kafka.get('version')}")
    worker = info["worker"]
    if worker["running"]:
        print(f"worker: running (pid {worker['pid']}), ready={worker.get('ready')}, "
              f"partitions={len(worker.get('assignment', []))}")
        for line in sink_lines(worker.get("sink", {}), worker.get("health")):
            print(line)
        for a in (worker.get("judge") or {}).get("recent_actions") or []:
            print(f"judge:  {a.get('time', '')[:19]} {a.get('experiment_id')} {a.get('action')} "
                  f"{'ok' if a.get('ok') else 'FAILED'}"
                  + (f" HTTP {a['status_code']}" if a.get("status_code") else "")
                  + (f" {a['latency_ms']:.0f} ms" if a.get("latency_ms") is not None else "")
                  + (f" {a['url']}" if a.get("url") else "") + (f" ({a['error']})" if a.get("error") else ""))
        if worker.get("error"):
            print(f"        {worker['error']}")
    else:
        print("worker: stopped")
    print(f"store:  {info['store']}")
    if info.get("store_endpoint"):
        print(f"        served on {info['store_endpoint']}")
    print(f"http:   {info['http']}")
    print(f"home:   {info['home']}")
    return 0


def sink_lines(sinks: dict, health: dict | None) -> list[str]:
    """The summary of every sink (totals, then one line each) and the health: ``ok``, or
    ``degraded`` with each problem (sink, partition, state, since when, the error)."""
    if not sinks:
        return []
    keys = ("stored", "invalid", "batches", "skipped")
    total = {k: sum(int(s.get(k) or 0) for s in sinks.values()) for k in keys}
    states = (health or {}).get("sinks", {})
    lines = [f"sinks:  stored={total['stored']} dead-lettered={total['invalid']} batches={total['batches']} "
             f"skipped-after-restart={total['skipped']}"
             + ("" if health is None else f" health={health.get('status', 'ok')}")]
    by_table: dict[str, int] = {}
    for s in sinks.values():
        for table, n in (s.get("stored_by_table") or {}).items():
            by_table[table.rsplit(".", 1)[-1]] = by_table.get(table.rsplit(".", 1)[-1], 0) + int(n or 0)
    if by_table:  # what the rows are: requests, metrics, spans, experiment events (notes) ...
        lines.append("  since the worker started, stored per table: " + " ".join(f"{t}={n}" for t, n in sorted(by_table.items()) if n))
    for name, s in sinks.items():
        state = states.get(name, {})
        extra = f" lag={state['lag']}" if state.get("lag") else ""
        lines.append(f"  {name + ':':<13} stored={s.get('stored')} dead-lettered={s.get('invalid')} "
                     f"batches={s.get('batches')} {state.get('state', 'ok')}{extra}")
    if health is None:
        return lines
    problems = health.get("problems") or []
    if not problems:
        lines.append("health: ok")
        return lines
    lines.append(f"health: degraded ({len(problems)} problem{'s' if len(problems) != 1 else ''})")
    for p in problems:
        where = p.get("sink") or "?"
        if p.get("partition") is not None:
            where += f"[{p['partition']}]"
        lines.append(f"  {where} {p.get('state')} since {p.get('since')}: {p.get('error')}")
    return lines
