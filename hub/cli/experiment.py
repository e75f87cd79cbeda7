"""``hub experiment ...``, ``hub inject`` and ``hub note``: the experiment lifecycle from the command line."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import sys
from datetime import timezone

from hub.errors import UserError
from hub.experiments import lifecycle
from hub.experiments.definition import advisories, load_definition
from hub.experiments.service import ExperimentService, default_actor, now, summarize
from hub.settings import Settings


def _actor(p: argparse.ArgumentParser) -> None:
    p.add_argument("--actor", default=None, help="who is acting (default HUB_ACTOR, else user@host)")


def _fault_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("id", help="experiment id")
    p.add_argument("--action", required=True, help="what was done, e.g. stop-az, kill-vm, add-latency")
    p.add_argument("--target", required=True, help="what it was done to, e.g. az-b/patients-db-primary")
    p.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                   help="a parameter of the fault (repeatable); numbers and true/false keep their type")
    p.add_argument("--injector", default=None, help="the tool that injected it (default: the actor)")
    p.add_argument("--fault-id", default=None, help="an id for the fault (default: generated)")
    _at(p, "injected")
    _actor(p)


def _at(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument("--at", default=None, metavar="TIME",
                   help=f"when the fault was {what}, if not now: ISO 8601 (UTC when it has no offset, e.g. "
                        "2026-12-07T14:03:05Z) or seconds/minutes ago, written --at=-30s or --at=-2m; not before the "
                        "experiment's last event, not in the future")


def stated_at(text: str | None, current: dt.datetime) -> dt.datetime | None:
    """``--at``: an ISO 8601 time (UTC when it carries no offset) or a time ago (-30s, -2m, -1.5m)."""
    if text is None:
        return None
    raw = text.strip()
    m = re.fullmatch(r"-(\d+(?:\.\d+)?)([sm])", raw)
    if m:
        return current - dt.timedelta(seconds=float(m.group(1)) * (60 if m.group(2) == "m" else 1))
    try:
        value = dt.datetime.fromisoformat(raw.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise UserError(f"--at expects an ISO 8601 time such as 2026-12-07T14:03:05Z or a time ago such as "
                        f"-30s or -2m, not {text!r}") from None
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.timezone.utc)


def _note_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("id", help="experiment id")
    p.add_argument("text", help="the observation")
    p.add_argument("--surprise", action="store_true", help="mark it a surprise (give --expected and --actual)")
    p.add_argument("--expected", default="", help="what was expected to happen")
    p.add_argument("--actual", default="", help="what actually happened")
    p.add_argument("--tag", action="append", default=[], help="a tag, e.g. a service name (repeatable)")
    _actor(p)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("experiment", help="create and run experiments: the lifecycle as events",
                       description="Every step is an immutable event on the experiment log (hub.experiments).")
    cmds = p.add_subparsers(dest="experiment_command", metavar="SUBCOMMAND")
    cmds.required = True

    c = cmds.add_parser("create", help="create an experiment from a definition file (YAML)")
    c.add_argument("file", help="the definition, e.g. examples/experiments/patient-api-db-failover.yaml")
    c.add_argument("--id", default=None, help="the experiment id (default: the file's id, else from the title)")
    _actor(c)
    c.set_defaults(func=cmd_create)

    c = cmds.add_parser("validate", help="check a definition file without creating anything")
    c.add_argument("file", help="the definition file")
    c.set_defaults(func=cmd_validate)

    c = cmds.add_parser("check", help="record which prerequisites are done")
    c.add_argument("id", help="experiment id")
    c.add_argument("--done", action="append", default=[], metavar="ITEM", help="a prerequisite that is done (repeatable)")
    c.add_argument("--all-done", action="store_true", help="every prerequisite is done")
    c.add_argument("--note", default="", help="a note kept with each result")
    _actor(c)
    c.set_defaults(func=cmd_check)

    c = cmds.add_parser("start", help="start the experiment; its first phase begins")
    c.add_argument("id", help="experiment id")
    c.add_argument("--force", action="store_true", help="start even though prerequisites are not all done")
    _actor(c)
    c.set_defaults(func=cmd_start)

    c = cmds.add_parser("phase", help="move to another phase")
    c.add_argument("id", help="experiment id")
    c.add_argument("phase", help="a phase of the definition, e.g. injection")
    _actor(c)
    c.set_defaults(func=cmd_phase)

    c = cmds.add_parser("inject", help="record a fault injected")
    _fault_arguments(c)
    c.set_defaults(func=cmd_inject)

    c = cmds.add_parser("remove", help="record a fault removed")
    c.add_argument("id", help="experiment id")
    c.add_argument("fault_id", help="the fault's id (see `hub experiment show`)")
    _at(c, "removed")
    _actor(c)
    c.set_defaults(func=cmd_remove)

    c = cmds.add_parser("note", help="add an observation or a surprise")
    _note_arguments(c)
    c.set_defaults(func=cmd_note)

    c = cmds.add_parser("abort", help="abort the experiment")
    c.add_argument("id", help="experiment id")
    c.add_argument("--reason", required=True, help="why it is aborted")
    _actor(c)
    c.set_defaults(func=cmd_abort)

    c = cmds.add_parser("complete", help="complete the experiment")
    c.add_argument("id", help="experiment id")
    c.add_argument("--summary", default="", help="a one-paragraph summary")
    c.add_argument("--force", action="store_true", help="complete although faults are still active")
    _actor(c)
    c.set_defaults(func=cmd_complete)

    c = cmds.add_parser("list", help="every experiment with its status and phase")
    c.add_argument("--json", action="store_true", help="print JSON")
    c.set_defaults(func=cmd_list)

    c = cmds.add_parser("show", help="one experiment's current state")
    c.add_argument("id", help="experiment id")
    c.add_argument("--json", action="store_true", help="print JSON")
    c.set_defaults(func=cmd_show)

    c = cmds.add_parser("history", help="one experiment's events, in order: who did what when")
    c.add_argument("id", help="experiment id")
    c.add_argument("--json", action="store_true", help="print the events as JSON lines")
    c.set_defaults(func=cmd_history)

    c = cmds.add_parser("watch", help="a live view for the gameday room: phase, each rule against its threshold, alerts")
    c.add_argument("id", help="experiment id")
    c.add_argument("--interval", type=float, default=1.0, help="seconds between refreshes (default 1)")
    c.add_argument("--once", action="store_true", help="print one screen and exit (for scripts)")
    c.set_defaults(func=cmd_watch)

    p = sub.add_parser("inject", help="record a fault injected into a running experiment (= experiment inject)")
    _fault_arguments(p)
    p.set_defaults(func=cmd_inject)

    p = sub.add_parser("note", help="add an observation or surprise to an experiment (= experiment note)")
    _note_arguments(p)
    p.set_defaults(func=cmd_note)


def _parameters(pairs: list[str]) -> dict:
    out: dict = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise UserError(f"--param {pair!r}: expected KEY=VALUE")
        value: object = raw
        if raw in ("true", "false"):
            value = raw == "true"
        else:
            for kind in (int, float):
                try:
                    value = kind(raw)
                    break
                except ValueError:
                    continue
        out[key] = value
    return out


def _done(events, what: str) -> int:
    for event in events:
        print(f"{event.experiment_id}  #{event.sequence}  {event.__struct_config__.tag}  {event.time.isoformat()}  by {event.actor}")
    return 0


def _warn_advisories(definition) -> None:
    for line in advisories(definition):
        print(f"warning: {line}", file=sys.stderr)


def cmd_validate(args, settings: Settings) -> int:
    definition = load_definition(args.file)
    _warn_advisories(definition)
    print(f"{args.file}: valid ({definition.title}; {len(definition.phases)} phases, "
          f"{len(definition.steady_state)} steady-state measurements, {len(definition.abort_conditions)} abort conditions)")
    return 0


def cmd_create(args, settings: Settings) -> int:
    import msgspec

    definition = load_definition(args.file)
    _warn_advisories(definition)
    if args.id:
        definition = msgspec.structs.replace(definition, id=args.id)
    service = ExperimentService(settings)
    try:
        event = service.create(definition, args.actor)
    finally:
        service.close()
    print(f"created experiment {event.experiment_id} ({definition.title})")
    return 0


def _run(settings: Settings, experiment_id: str, decide) -> int:
    service = ExperimentService(settings)
    try:
        return _done(service.command(experiment_id, decide), "")
    finally:
        service.close()


def cmd_check(args, settings: Settings) -> int:
    def decide(state):
        items = [p.item for p in state.definition.prerequisites]
        unknown = [d for d in args.done if d not in items]
        if unknown:
            raise UserError(f"unknown prerequisite {unknown[0]!r}; the definition lists: {', '.join(items) or 'none'}")
        results = [{"item": item, "done": args.all_done or item in args.done, "note": args.note} for item in items]
        return lifecycle.check_prerequisites(state, results, args.actor or default_actor(), now())
    return _run(settings, args.id, decide)


def cmd_start(args, settings: Settings) -> int:
    return _run(settings, args.id, lambda s: lifecycle.start(s, args.actor or default_actor(), now(), force=args.force))


def cmd_phase(args, settings: Settings) -> int:
    return _run(settings, args.id, lambda s: lifecycle.change_phase(s, args.phase, args.actor or default_actor(), now()))


def cmd_inject(args, settings: Settings) -> int:
    params = _parameters(args.param)
    current = now()
    at = stated_at(args.at, current)
    return _run(settings, args.id, lambda s: lifecycle.inject_fault(
        s, args.action, args.target, args.actor or default_actor(), lifecycle.stated_time(s, at, current),
        parameters=params, injector=args.injector, fault_id=args.fault_id))


def cmd_remove(args, settings: Settings) -> int:
    current = now()
    at = stated_at(args.at, current)
    return _run(settings, args.id, lambda s: lifecycle.remove_fault(
        s, args.fault_id, args.actor or default_actor(), lifecycle.stated_time(s, at, current)))


def cmd_note(args, settings: Settings) -> int:
    return _run(settings, args.id, lambda s: lifecycle.add_note(
        s, args.text, args.actor or default_actor(), now(), note_kind="surprise" if args.surprise else "observation",
        expected=args.expected, actual=args.actual, tags=args.tag))


def cmd_abort(args, settings: Settings) -> int:
    actor = args.actor or default_actor()
    return _run(settings, args.id, lambda s: lifecycle.abort(s, args.reason, actor, now()))


def cmd_complete(args, settings: Settings) -> int:
    return _run(settings, args.id, lambda s: lifecycle.complete(
        s, args.actor or default_actor(), now(), args.summary, force=args.force))


def cmd_list(args, settings: Settings) -> int:
    service = ExperimentService(settings)
    states = sorted(service.states().values(), key=lambda s: s.created_at)
    if args.json:
        print(json.dumps([summarize(s) for s in states], indent=2))
        return 0
    if not states:
        print("no experiments yet (create one with `hub experiment create FILE`)")
        return 0
    print(f"{'id':32}  {'status':10}  {'phase':12}  {'env':9}  title")
    for s in states:
        print(f"{s.id:32}  {s.status:10}  {s.phase or '-':12}  {s.definition.environment.kind:9}  {s.title}")
    return 0


def cmd_show(args, settings: Settings) -> int:
    info = summarize(ExperimentService(settings).get(args.id))
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    print(f"{info['id']}: {info['title']}")
    print(f"  status {info['status']}, phase {info['phase'] or '-'}, {info['environment']} environment, risk {info['risk']}")
    print(f"  created {info['created_at']} by {info['created_by']}; started {info['started_at'] or '-'}; ended {info['ended_at'] or '-'}")
    if info["abort_reason"]:
        print(f"  aborted by {info['aborted_by']}: {info['abort_reason']}")
    for p in info["prerequisites"]:
        print(f"  [{'x' if p['done'] else ' '}] {p['item']}")
    for span in info["phases"]:
        print(f"  phase {span['phase']:12} {span['start']} .. {span['end'] or 'now'}")
    for f in info["faults"]:
        print(f"  fault {f['fault_id']}: {f['action']} on {f['target']} {f['start']} .. {f['end'] or 'ACTIVE'}")
    for n in info["notes"]:
        extra = f" (expected: {n['expected']}; actual: {n['actual']})" if n["kind"] == "surprise" else ""
        print(f"  {n['kind']} by {n['actor']} in {n['phase'] or '-'}: {n['text']}{extra}")
    return 0


def cmd_history(args, settings: Settings) -> int:
    from hub.experiments.events import encode_event

    events = ExperimentService(settings).history(args.id)
    if args.json:
        for e in events:
            print(encode_event(e).decode())
        return 0
    for line in history_lines(events):
        print(line)
    return 0


def history_lines(events) -> list[str]:
    """``hub experiment history``'s lines: every time in UTC with milliseconds (an event stamped on
    a whole second too), columns as wide as their widest value, so that they line up."""
    rows = []
    for e in events:
        detail = ""
        kind = e.__struct_config__.tag
        if kind == "phase_changed":
            detail = e.phase
        elif kind == "fault_injected":
            detail = f"{e.fault_id} {e.action} on {e.target}"
        elif kind == "fault_removed":
            detail = e.fault_id
        elif kind == "note_added":
            detail = f"{e.note_kind}: {e.text}"
        elif kind == "experiment_aborted":
            detail = f"by {e.by}: {e.reason}"
        when = e.time.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        rows.append((f"#{e.sequence}", when, e.actor, kind, detail))
    widths = [max([len(r[i]) for r in rows] + [0]) for i in range(4)]
    return [f"{r[0]:<{widths[0]}} {r[1]:<{widths[1]}}  {r[2]:<{max(widths[2], 24)}}  {r[3]:<{max(widths[3], 22)}} "
            f"{r[4]}".rstrip() for r in rows]


def render_watch(info: dict, rules: list[dict], alerts: list[list], width: int = 100) -> str:
    """One screen of ``hub experiment watch``."""
    lines = [f"{info['id']}: {info['title']}"[:width],
             f"status {info['status'].upper()}   phase {info['phase'] or '-'}   started {info['started_at'] or '-'}"]
    if info.get("abort_reason"):
        lines.append(f"ABORTED by {info['aborted_by']}: {info['abort_reason']}"[:width])
    active = ", ".join(f"{f['fault_id']} ({f['action']} on {f['target']})" for f in info.get("active_faults", []))
    lines.append(f"active faults: {active or 'none'}"[:width])
    lines.append("")
    lines.append(f"{'rule':24} {'measurement':14} {'value':>10} {'':2} {'threshold':>10} {'samples':>8}  state")
    for r in rules:
        value = "-" if r["value"] is None else f"{r['value']:.4g}"
        state = "FIRING" if r["firing"] else ("breaching" if r["breaching_since"] else "ok")
        if r["value"] is None:
            state = r.get("detail") or "no data"
        lines.append(f"{r['rule'][:24]:24} {r['measurement'][:14]:14} {value:>10} {r['comparison']:2} "
                     f"{r['threshold']:>10g} {r['samples']:>8}  {state}"[:width])
    lines.append("")
    lines.append("alerts:" if alerts else "alerts: none")
    for time_, status, rule, message in alerts[-8:]:
        lines.append(f"  {str(time_)[11:19]} {status:8} {message}"[:width])
    return "\n".join(lines)


def cmd_watch(args, settings: Settings) -> int:
    import shutil
    import sys
    import time

    from hub.errors import HubError
    from hub.runtime.stack import Stack

    stack = Stack(settings)
    if not stack.hub_answers():
        raise UserError(f"no hub answers at {settings.http_url}; `hub watch` needs the running hub (`hub up`)")
    query = ("SELECT time, status, rule, message FROM hub.alerts WHERE kind = 'alert' AND experiment_id = "
             f"'{args.id.replace(chr(39), '')}' ORDER BY time")
    try:
        while True:
            try:
                info = stack.api(f"/v1/experiments/{args.id}")
                rules = stack.api(f"/v1/experiments/{args.id}/rules")
                alerts = stack.api("/v1/sql", {"query": query})["rows"]
            except HubError as exc:
                raise UserError(str(exc)) from None
            screen = render_watch(info, rules, alerts, shutil.get_terminal_size((100, 40)).columns)
            if args.once:
                print(screen)
                return 0
            sys.stdout.write("\x1b[2J\x1b[H" + screen + f"\n\n(refreshing every {args.interval:g}s; Ctrl-C to stop)\n")
            sys.stdout.flush()
            time.sleep(args.interval)
    except KeyboardInterrupt:
        return 0
