"""The hub worker process: owns the store, runs the Faust agents and serves the HTTP endpoint.

Started by ``hub up`` (in the background) or ``hub worker`` (attached); ``python -m streams.worker``
does the same.
"""

from __future__ import annotations

import gc
import logging
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor

from hub.api.server import ApiContext, build_app, serve
from hub.metrics import Families
from hub.abort.runtime import DerivedRecordPublisher, JudgeRuntime
from hub.experiments.registry import ExperimentRegistry
from hub.shadow.pairing import PairingAgent
from hub.sql import sql_limits
from hub.pipeline import build_sinks, redactor_for, topics_to_create
from hub.runtime.topics import ensure_topics
from hub.settings import Settings, load_settings
from hub.storage.client import open_store
from hub.storage.migrations import migrate
from hub.storage.sink import lag_problems
from streams.app import create_app
from streams.judge_agent import register_judge_agent
from streams.sink_agent import register_sink_agent

log = logging.getLogger("hub.worker")


def pid_file(settings: Settings):
    return settings.run_dir / "worker.pid"


def sink_lags(sinks, assignment, highwater, committed: dict) -> dict[str, dict[int, int]]:
    """Per sink and partition held: records on the topic not yet stored, the consumer's high
    watermark minus the next offset to store. That is the committed offset, or just past the last
    offset whose rows the sink has stored when the commit that follows has not happened yet (a
    store that goes away right after an insert must not make those rows count as waiting)."""
    out: dict[str, dict[int, int]] = {sink.spec.name: {} for sink in sinks}
    by_topic = {sink.spec.topic: sink for sink in sinks}
    for tp in assignment:
        sink = by_topic.get(tp.topic)
        if sink is None:
            continue
        high = highwater(tp)
        if high is None:
            continue
        next_offset = max(committed.get(tp) or 0, sink.landed.get(tp.partition, -1) + 1)
        out[sink.spec.name][tp.partition] = max(0, int(high) - int(next_offset))
    return out


def metric_families(sinks, judge: JudgeRuntime, current: dict[str, dict[int, int]],
                    redactions: dict[tuple[str, str], int], now: float) -> Families:
    """``/metrics``: the sinks', the dead letters', the judge's and the redaction's values now."""
    out = Families()
    for (source, rule), n in redactions.items():
        out.add("hub_redactions", n, kind="untyped", help="Values masked, by source and rule.",
                source=source, rule=rule)
    for sink in sinks:
        s, name = sink.stats, sink.spec.name
        out.add("hub_sink_stalled_seconds", sink.health.stalled_seconds(now), kind="gauge",
                help="Seconds the sink has waited for the store or the broker (0 when it is not stalled).", sink=name)
        out.add("hub_sink_lag", sum(current[name].values()), kind="gauge",
                help="Records of the sink's topic not yet stored.", sink=name)
        out.add("hub_sink_unexpected_errors", sink.health.errors, kind="untyped",
                help="Errors the sink did not expect.", sink=name)
        out.add("hub_sink_records_stored", s.stored, kind="untyped", help="Records stored.", sink=name)
        out.add("hub_sink_records_skipped", s.skipped, kind="untyped",
                help="Records skipped as stored before.", sink=name)
        out.add("hub_sink_batches", s.batches, kind="untyped", help="Batches written.", sink=name)
        out.add("hub_sink_insert_seconds", round(s.insert_seconds, 3), kind="untyped",
                help="Seconds spent inserting.", sink=name)
        for step, seconds in list(s.phase_seconds.items()):
            out.add("hub_sink_step_seconds", round(seconds, 3), kind="untyped",
                    help="Seconds the sink spent per step of a write.", sink=name, step=step)
        for reason, count in s.invalid_by_reason.items():
            out.add("hub_dlq_records", count, kind="untyped", help="Records sent to the dead-letter topic, by reason.",
                    sink=name, reason=reason)
    if sinks:  # one dead-letter publisher for all sinks
        out.add("hub_dlq_truncated", getattr(sinks[-1].dead_letters, "truncated", 0), kind="untyped",
                help="Dead letters whose value was cut to fit.")
    out.add("hub_judge_errors", judge.health.errors, kind="untyped", help="Errors of the abort judge.")
    for topic, count in list(judge.skipped.items()):
        out.add("hub_judge_skipped_records", count, kind="untyped", help="Records the abort judge skipped, by topic.",
                topic=topic)
    return out


def health_report(sinks, judge: JudgeRuntime, current: dict[str, dict[int, int]],
                  lagging_since: dict[tuple[str, int], float], max_lag: int, now: float) -> dict:
    """``/health``'s body: every sink's problems (stalled, crashed, lagging by more than ``max_lag``
    records: ``current`` holds the lag per sink and partition, ``lagging_since`` since when) and the
    abort judge's (its agent crashed, or it is erring on its input)."""
    problems: list[dict] = []
    for sink in sinks:
        problems.extend(sink.health.problems())
        lag = current.get(sink.spec.name, {})
        over = {p: n for p, n in lag.items() if n > max_lag}
        for partition in over:
            lagging_since.setdefault((sink.spec.name, partition), now)
        for key in [k for k in lagging_since if k[0] == sink.spec.name and k[1] not in over]:
            lagging_since.pop(key)
        problems.extend(lag_problems(sink.spec.name, over, max_lag,
                                     {p: lagging_since[(sink.spec.name, p)] for p in over}))
    problems.extend(judge.health.problems())
    return {"status": "degraded" if problems else "ok", "problems": problems,
            "sinks": {sink.spec.name: {"state": sink.health.state,
                                       "stalled_seconds": sink.health.stalled_seconds(now),
                                       "lag": sum(current.get(sink.spec.name, {}).values())} for sink in sinks},
            "judge": {"state": judge.health.state, "errors": judge.health.errors,
                      "last_error": judge.health.last_error, "skipped": dict(judge.skipped)}}


def build(settings: Settings):
    """Everything the worker runs, wired together; returns the Faust app."""
    annotator = None
    if settings.grafana_url.strip():
        # live annotations; without HUB_GRAFANA_URL the dashboards package (and its Grafana
        # client, a fifth of the worker's imports) is not loaded at all
        from dashboards.publish import GrafanaAnnotator

        annotator = GrafanaAnnotator(settings)

    def kafka_side() -> ExperimentRegistry:
        ensure_topics(settings.bootstrap, topics_to_create(settings))
        registry = ExperimentRegistry(settings.bootstrap, settings.topic_experiments)
        if annotator is not None:
            registry.on_event(annotator.on_event)
        registry.start()
        return registry

    # The topics and the experiment log are set up on Kafka while the store opens and migrates
    # (independent start-up steps).
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="startup-kafka") as startup:
        kafka_ready = startup.submit(kafka_side)
        store = open_store(settings)
        migrate(store, settings, progress=log.info)
        registry = kafka_ready.result()
    pairing = PairingAgent(window_s=30.0)
    sinks = build_sinks(settings, store, registry, DerivedRecordPublisher(settings),
                        DerivedRecordPublisher(settings, settings.topic_pairs), pairing, pipelined=True)
    for sink in sinks:
        sink.dead_letters.max_bytes = settings.dead_letter_max_bytes
    judge = JudgeRuntime(settings, registry)
    app = create_app(settings)
    for sink in sinks:
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"sink-{sink.spec.name}")
        register_sink_agent(app, settings, sink, executor)
    register_judge_agent(app, settings, judge)

    @app.on_partitions_revoked.connect  # type: ignore[arg-type]  # signal= arrives in **kwargs
    async def _forget_pairing(sender, revoked, **kwargs) -> None:  # noqa: ANN001
        pairing.forget(tp.partition for tp in revoked if tp.topic == settings.topic_requests)
    started = time.time()

    lagging_since: dict[tuple[str, int], float] = {}

    def lags() -> dict[str, dict[int, int]]:
        try:
            consumer = app.consumer
            assignment = list(consumer.assignment())
        except Exception:
            return {sink.spec.name: {} for sink in sinks}

        def highwater(tp):  # noqa: ANN001, ANN202
            try:
                return consumer.highwater(tp)
            except Exception:
                return None
        committed = consumer._committed_offset  # type: ignore[attr-defined]  # not in ConsumerT
        return sink_lags(sinks, assignment, highwater, committed)

    def health() -> dict:
        return health_report(sinks, judge, lags(), lagging_since, settings.health_max_lag, time.time())

    def is_ready() -> bool:
        try:
            return bool(app.consumer.assignment()) and registry.known_until > 0
        except Exception:
            return False

    def status() -> dict:
        try:
            assignment = sorted(f"{tp.topic}[{tp.partition}]" for tp in app.consumer.assignment())
        except Exception:
            assignment = []
        return {
            "pid": os.getpid(), "uptime_seconds": round(time.time() - started, 1),
            "bootstrap": settings.bootstrap, "store": "embedded" if settings.embedded_clickhouse else "server",
            "assignment": assignment, "sink": {sink.spec.name: sink.stats.as_dict() for sink in sinks},
            "health": health(),
            "redacted": {f"{source}:{rule}": n for (source, rule), n in redactor_for(settings).stats.snapshot().items()},
            "judge": {"rollups": judge.processed, "duplicate_rollups": judge.judge.duplicates,
                      "experiments": len(judge.judge.experiments), "state": judge.health.state,
                      "errors": judge.health.errors, "skipped": dict(judge.skipped),
                      "recent_actions": [{k: a.get(k) for k in ("time", "experiment_id", "rule", "action", "ok",
                                                                "status_code", "latency_ms", "url", "error")}
                                         for a in list(judge.actions.outcomes)[-5:]]},
        }

    def metrics() -> Families:
        return metric_families(sinks, judge, lags(), redactor_for(settings).stats.snapshot(), time.time())

    ctx = ApiContext(store=store, token=settings.api_token, is_ready=is_ready, status=status, metrics=metrics,
                     health=health,
                     max_rows=sql_limits(settings).max_rows,
                     extra={"settings": settings, "registry": registry, "ingest_token": settings.ingest_token,
                            "judge": judge})

    @app.task
    async def http_endpoint() -> None:
        await serve(build_app(ctx), settings.http_host, settings.http_port)
        log.info("HTTP endpoint on %s", settings.http_url)

    if settings.embedded_clickhouse and settings.store_endpoint:
        @app.task
        async def store_endpoint() -> None:  # the store over ClickHouse's HTTP interface, for Grafana
            import asyncio

            from hub.storage.server import serve_endpoint

            server = await serve_endpoint(settings)
            if server is None:
                return
            try:
                await asyncio.Event().wait()
            finally:  # the worker stops: Grafana's statements still running are cancelled, not waited for
                server.cancel_readers()

    return app


def tune_gc() -> None:
    """Fewer cyclic garbage collections: the worker allocates a row tuple per record and holds many
    (pairing windows, batches), and with the default thresholds the collector rescans them all
    the time (about 40% of the pairing's cost, measured). Objects made during start-up are frozen
    out of the scans; young collections run every 50,000 allocations instead of 700."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)


def run(settings: Settings) -> None:
    from faust.worker import Worker

    from hub.masking import install_log_masking

    install_log_masking()  # webhook URLs, URL credentials and tokens never reach the worker's log
    settings.run_dir.mkdir(parents=True, exist_ok=True)
    logging.getLogger("kafka").setLevel(logging.WARNING)  # kafka-python logs every connection at INFO
    app = build(settings)
    tune_gc()
    pid_file(settings).write_text(str(os.getpid()))
    try:
        worker = Worker(app, loglevel=settings.log_level.upper(), quiet=True)
        logging.getLogger("kafka").setLevel(logging.WARNING)
        worker.execute_from_commandline()
    finally:
        try:
            if pid_file(settings).read_text().strip() == str(os.getpid()):
                pid_file(settings).unlink()
        except FileNotFoundError:
            pass


def main() -> None:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    run(load_settings())


if __name__ == "__main__":
    main()
