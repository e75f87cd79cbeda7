"""``hub import vegeta|dropwizard|chaostoolkit``: bring other tools' output onto the hub."""

from __future__ import annotations

import argparse
import json
import sys

from hub.errors import UserError
from hub.settings import Settings

FORCE_HELP = "import into an experiment that has ended (completed or aborted); refused without it"
ENDED = ("completed", "aborted")


def refuse_ended(experiment_id: str, state) -> None:
    """``UserError`` when ``state`` (the experiment's, or None when unknown) has ended: importing
    would add to a finished timeline or place new evidence on it, unless ``--force``."""
    if state is None or state.status not in ENDED:
        return
    when = f" at {state.ended_at.isoformat(timespec='seconds')}" if state.ended_at else ""
    raise UserError(f"experiment {experiment_id} is {state.status} (ended{when}): nothing imported; "
                    f"give --force to import into an ended experiment")


def _check_experiment(settings: Settings, experiment_id: str, force: bool) -> None:
    """``refuse_ended`` for an experiment read from the log (an unknown id is left to the import)."""
    if force or not experiment_id:
        return
    from hub.experiments.service import ExperimentService, UnknownExperiment

    service = ExperimentService(settings)
    try:
        try:
            state = service.get(experiment_id)
        except UnknownExperiment:
            state = None
    finally:
        service.close()
    refuse_ended(experiment_id, state)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("import", help="import other tools' output: vegeta results, Dropwizard metrics, Chaos Toolkit journals",
                       description="Bring the output of the tools used in a gameday onto the hub (see hub/integrations/README.md).")
    cmds = p.add_subparsers(dest="import_command", metavar="TOOL")
    cmds.required = True

    c = cmds.add_parser("vegeta", help="send `vegeta encode` JSON results as request legs tagged to an experiment")
    c.add_argument("file", help="the output of `vegeta encode` (JSON lines), or '-' for standard input")
    c.add_argument("--experiment", required=True, metavar="ID", help="the experiment the load belongs to")
    c.add_argument("--route", action="append", default=[], metavar="TEMPLATE",
                   help="a route template such as /patients/{id} to store instead of the path (repeatable; "
                        "query strings are always dropped, identifier-like segments become {id})")
    c.add_argument("--gateway", default="vegeta", help="the gateway name the legs carry (default vegeta)")
    c.add_argument("--backend", default=None, help="the backend name (default: the host of each result's URL)")
    c.add_argument("--batch", type=int, default=100, metavar="N", help="events per Kafka record (default 100)")
    c.add_argument("--force", action="store_true", help=FORCE_HELP)
    c.set_defaults(func=cmd_vegeta)

    c = cmds.add_parser("dropwizard", help="poll a service's Dropwizard /metrics JSON and store it as OTLP metrics")
    c.add_argument("url", help="the admin metrics URL, e.g. http://patients:8081/metrics")
    c.add_argument("--service", required=True, help="the service name the metrics are stored under")
    c.add_argument("--interval", type=float, default=10.0, help="seconds between polls (default 10)")
    c.add_argument("--count", type=int, default=None, metavar="N", help="stop after N polls (default: until Ctrl-C)")
    c.add_argument("--experiment", default="", metavar="ID", help="tag the metrics with this experiment id")
    c.add_argument("--timeout", type=float, default=10.0, metavar="SECONDS",
                   help="longest wait for each fetch of the metrics document (default 10)")
    c.add_argument("--force", action="store_true", help=FORCE_HELP)
    c.set_defaults(func=cmd_dropwizard)

    c = cmds.add_parser("chaostoolkit", help="write a finished Chaos Toolkit journal onto an experiment's timeline")
    c.add_argument("journal", help="the journal.json of a `chaos run`")
    c.add_argument("--experiment", required=True, metavar="ID", help="the hub experiment the run belongs to")
    c.add_argument("--restores", action="append", default=[], metavar="ACTION",
                   help="a method action that undoes an earlier one instead of injecting a fault (repeatable)")
    c.add_argument("--actor", default=None, help="who records it (default HUB_ACTOR, else user@host)")
    c.add_argument("--force", action="store_true", help=FORCE_HELP)
    c.set_defaults(func=cmd_chaostoolkit)


def cmd_vegeta(args, settings: Settings) -> int:
    from hub.cli.data import _open
    from hub.integrations.vegeta import route_matcher, vegeta_to_legs
    from hub.producer import send_records

    if args.batch < 1:
        raise UserError("--batch must be at least 1")
    route_of = route_matcher(args.route)
    _check_experiment(settings, args.experiment, args.force)
    handle = _open(args.file)
    records = vegeta_to_legs(handle, experiment_id=args.experiment, gateway=args.gateway, backend=args.backend,
                             route_of=route_of, name="FILE" if args.file == "-" else args.file)
    count, seconds = send_records(settings.bootstrap, settings.topic_requests, records, events_per_record=args.batch)
    print(f"sent {count:,} vegeta results to {settings.topic_requests} as request legs of experiment "
          f"{args.experiment} in {seconds:.2f}s")
    return 0


def cmd_dropwizard(args, settings: Settings) -> int:
    from hub.integrations.dropwizard import check_experiment, check_url, poll

    check_url(args.url)
    if args.experiment:
        check_experiment(settings, args.experiment)  # an unknown id is refused
    _check_experiment(settings, args.experiment, args.force)
    done = poll(args.url, service=args.service, bootstrap=settings.bootstrap, topic=settings.topic_metrics,
                interval=args.interval, count=args.count, experiment_id=args.experiment,
                progress=lambda m: print(m, file=sys.stderr),
                starts_path=settings.home_dir / "dropwizard-starts.json", max_record_bytes=settings.max_record_bytes,
                timeout=args.timeout)
    print(f"sent {done} poll(s) of {args.url} to {settings.topic_metrics} as service {args.service}")
    return 0


def cmd_chaostoolkit(args, settings: Settings) -> int:
    from hub.experiments.service import ExperimentService, default_actor
    from hub.integrations.chaostoolkit import import_journal

    journal = read_json_file(args.journal, settings.max_record_bytes * 16, settings.max_nesting_depth)
    service = ExperimentService(settings)
    try:
        if not args.force:
            refuse_ended(args.experiment, service.get(args.experiment))
        try:
            events, problems = import_journal(journal, args.experiment, service, actor=args.actor or default_actor(),
                                              restores=args.restores)
        except ValueError as exc:
            raise UserError(f"{args.journal}: {exc}") from None
    finally:
        service.close()
    for e in events:
        print(f"{e.experiment_id}  #{e.sequence}  {e.__struct_config__.tag}  {e.time.isoformat()}")
    for problem in problems:
        print(f"hub: warning: {problem}", file=sys.stderr)
    return 0


def read_json_file(path: str, max_bytes: int, max_depth: int):
    """The JSON document in a file, or ``UserError`` with one line: unreadable, larger than
    ``max_bytes``, nested deeper than ``max_depth``, not UTF-8, not JSON."""
    from hub.records.decode import too_deep

    try:
        with open(path, "rb") as f:
            data = f.read(max_bytes + 1)
    except OSError as exc:
        raise UserError(f"cannot read {path}: {exc.strerror or exc}") from None
    if len(data) > max_bytes:
        raise UserError(f"{path}: larger than {max_bytes} bytes")
    if too_deep(data, max_depth):
        raise UserError(f"{path}: nested more than {max_depth} levels deep (HUB_MAX_NESTING_DEPTH)")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UserError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise UserError(f"{path}: not JSON ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})") from None
