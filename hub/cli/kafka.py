"""``hub kafka install|start|stop|status|topics``: manage the embedded Kafka broker."""

from __future__ import annotations

import argparse
import json
import sys

from hub.errors import RecoverableError, UserError
from hub.runtime.kafka import KafkaRuntime
from hub.settings import Settings


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "kafka",
        help="manage the embedded Kafka broker (install, start, stop, status, topics)",
        description="Manage the single-node Kafka broker the hub runs on loopback. With "
                    "HUB_KAFKA_BOOTSTRAP set the hub uses that cluster instead and starts nothing.",
    )
    sub = parser.add_subparsers(dest="kafka_command", metavar="SUBCOMMAND")
    sub.required = True

    install = sub.add_parser(
        "install", help="fetch the broker's jars from Maven Central into HUB_KAFKA_CACHE",
        description="Fetch the jars of Kafka HUB_KAFKA_VERSION with Maven (needs mvn and Java 17+). "
                    "Does nothing if they are already cached.")
    install.set_defaults(func=cmd_install)

    start = sub.add_parser(
        "start", help="start the embedded broker in the background and wait until it answers",
        description="Install if needed, format the data dir once, start the broker as a "
                    "background process and wait up to HUB_KAFKA_START_TIMEOUT seconds for it.")
    start.add_argument("--no-wait", action="store_true",
                       help="return as soon as the process is started, without waiting for it to answer")
    start.set_defaults(func=cmd_start)

    stop = sub.add_parser("stop", help="stop the embedded broker (SIGTERM, then SIGKILL)",
                          description="Stop the embedded broker; it shuts down cleanly on SIGTERM.")
    stop.add_argument("--timeout", type=float, default=30.0, metavar="SECONDS",
                      help="seconds to wait after SIGTERM before killing the broker (default 30)")
    stop.set_defaults(func=cmd_stop)

    status = sub.add_parser("status", help="show whether the broker runs, its pid, address and files",
                            description="Show the embedded broker's state. Exit code 0 if it runs "
                                        "(or an external cluster is configured), 1 if not.")
    status.add_argument("--json", action="store_true", help="print the status as one JSON object")
    status.set_defaults(func=cmd_status)

    topics = sub.add_parser("topics", help="list the cluster's topics with their partition counts",
                            description="List topics of the hub's cluster (embedded or HUB_KAFKA_BOOTSTRAP).")
    topics.add_argument("--internal", action="store_true",
                        help="include Kafka's internal topics (__consumer_offsets, ...)")
    topics.add_argument("--json", action="store_true", help="print {topic: partitions} as JSON")
    topics.set_defaults(func=cmd_topics)


def _progress(line: str) -> None:
    print(line, flush=True)


def cmd_install(args: argparse.Namespace, settings: Settings) -> int:
    runtime = KafkaRuntime(settings)
    libs = runtime.install(progress=_progress)
    print(f"Kafka {runtime.version} jars: {libs}")
    return 0


def cmd_start(args: argparse.Namespace, settings: Settings) -> int:
    runtime = KafkaRuntime(settings)
    if not settings.embedded_kafka:
        raise UserError(f"HUB_KAFKA_BOOTSTRAP is set ({settings.kafka_bootstrap}): the hub uses "
                        f"that cluster and has no broker of its own to start")
    already = runtime.running_pid()
    if already is None:
        _progress(f"Starting Kafka {runtime.version} on {runtime.bootstrap} ...")
    pid = runtime.start(wait=not args.no_wait, progress=_progress)
    if already is not None:
        print(f"Kafka is already running on {runtime.bootstrap} (pid {pid})")
    elif args.no_wait:
        print(f"Kafka started (pid {pid}); it will answer on {runtime.bootstrap} shortly. "
              f"Log: {runtime.log_file}")
    else:
        print(f"Kafka is running on {runtime.bootstrap} (pid {pid}). Log: {runtime.log_file}")
    return 0


def cmd_stop(args: argparse.Namespace, settings: Settings) -> int:
    if not settings.embedded_kafka:
        raise UserError("HUB_KAFKA_BOOTSTRAP is set: the hub runs no broker of its own to stop")
    runtime = KafkaRuntime(settings)
    pid = runtime.running_pid()
    if runtime.stop(timeout=args.timeout):
        print(f"Kafka stopped (pid {pid})")
    else:
        print("Kafka was not running")
    return 0


def cmd_status(args: argparse.Namespace, settings: Settings) -> int:
    runtime = KafkaRuntime(settings)
    status = runtime.status()
    ok = status["running"] or not status["embedded"]
    if args.json:
        print(json.dumps(status, indent=2))
        return 0 if ok else 1
    if not status["embedded"]:
        print(f"external cluster: {status['bootstrap']} (HUB_KAFKA_BOOTSTRAP; the hub runs no broker)")
        return 0
    state = f"running (pid {status['pid']})" if status["running"] else "not running"
    rows = [
        ("kafka", state),
        ("bootstrap", status["bootstrap"]),
        ("version", status["version"] + ("" if status["installed"] else " (not installed)")),
        ("log", status["log"]),
        ("data dir", status["data_dir"]),
        ("jars", status["libs"]),
    ]
    for key, value in rows:
        print(f"{key + ':':<11}{value}")
    return 0 if ok else 1


def cmd_topics(args: argparse.Namespace, settings: Settings) -> int:
    from hub.runtime.topics import list_topics

    if settings.embedded_kafka and not KafkaRuntime(settings).is_running():
        raise UserError("the embedded Kafka broker is not running; start it with `hub kafka start`")
    try:
        topics = list_topics(settings.bootstrap, include_internal=args.internal, timeout=15)
    except RecoverableError as exc:
        raise UserError(str(exc)) from None
    if args.json:
        print(json.dumps(topics, indent=2))
        return 0
    if not topics:
        print(f"no topics on {settings.bootstrap}", file=sys.stderr)
        return 0
    width = max(len(name) for name in topics)
    print(f"{'TOPIC':<{width}}  PARTITIONS")
    for name, partitions in topics.items():
        print(f"{name:<{width}}  {partitions}")
    return 0
