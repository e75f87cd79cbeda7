"""What the worker runs: one exactly-once sink per input topic, wired to the store, Kafka and the DLQ."""

from __future__ import annotations

from hub.abort.match import counters
from hub.abort.records import ALERT_COLUMNS, decode_alerts
from hub.abort.rollup import encode_rollups, pair_cells, request_cells, span_cells
from hub.abort.runtime import DerivedRecordPublisher
from hub.experiments.correlate import correlate_pair_rows, correlate_request_rows, correlate_span_rows
from hub.experiments.projection import PROJECTION_COLUMNS, ExperimentProjection, KafkaHistory
from hub.experiments.registry import ExperimentRegistry
from hub.otel.decode import LOG_COLUMNS, TRACE_COLUMNS, decode_logs, decode_metrics, decode_spans
from hub.records.decode import REQUEST_COLUMNS, decode_request_legs, limits_from
from hub.records.request_leg import REQ_EVENT_TIME
from hub.shadow.dedupe import PairDeduplicator
from hub.shadow.pairing import BATCH_BYTES, PairingAgent, batch_by_partition
from hub.shadow.records import PAIR_COLUMNS, PAIR_TIME, decode_pairs
from hub.redaction import Redactor, load_policy
from hub.runtime.fetch import KafkaRangeFetcher
from hub.runtime.topics import TopicPlan, retention_configs
from hub.settings import Settings
from hub.storage.client import Store
from hub.redaction.dead_letters import RedactingDeadLetterPublisher
from hub.redaction.key import ensure_key
from hub.storage.sink import ExactlyOnceSink, SinkSpec

_SPAN_TIME = TRACE_COLUMNS.index("Timestamp")  # a span row's start, in ns


class Correlator:
    """Places decoded rows on experiments, after waiting until the timeline covers them."""

    def __init__(self, registry: ExperimentRegistry | None, lateness: float):
        self.registry = registry
        self.lateness = lateness

    def _ready(self, newest: float) -> None:
        """Wait until the timeline covers the batch, when an experiment could still claim it.

        Only an experiment that has not ended can have an event on its way that changes where
        a new record belongs; with none, nothing waits. The wait is bounded: a record stamped
        far in the future (a fast clock) waits at most the lateness plus a second.
        """
        if self.registry is None or not self.registry.has_open_experiments():
            return
        self.registry.wait_until_known(newest + self.lateness, max_wait=self.lateness + 1.0)

    def _place(self, batches: list, newest_of, correlate) -> list:
        """Place every batch's rows, after one wait for the timeline to cover the newest of them."""
        if self.registry is not None and any(batch.rows for batch in batches):
            self._ready(max(newest_of(batch.rows) for batch in batches if batch.rows))
            index = self.registry.index()
            for batch in batches:
                if batch.rows:
                    batch.rows = correlate(index, batch.rows)
        return batches

    def requests(self, batches: list) -> list:
        return self._place(batches, lambda rows: max(row[REQ_EVENT_TIME] for row in rows).timestamp(),
                           correlate_request_rows)

    def pairs(self, batches: list) -> list:
        return self._place(batches, lambda rows: max(row[PAIR_TIME] for row in rows).timestamp(), correlate_pair_rows)

    def spans(self, batches: list) -> list:
        return self._place(batches, lambda rows: max(row[_SPAN_TIME] for row in rows) / 1e9, correlate_span_rows)


def custom_counters(registry: ExperimentRegistry | None):
    """``experiment id -> [(rule, numerator, denominator)]`` for the custom rules the rollups count."""
    compiled: dict[str, tuple[object, list]] = {}

    def counters_of(experiment_id: str) -> list:
        state = registry.states.get(experiment_id) if registry is not None else None
        if state is None:
            return []
        cached = compiled.get(experiment_id)
        if cached is None or cached[0] is not state.definition:
            cached = compiled[experiment_id] = (state.definition, counters(state.definition.abort_conditions))
        return cached[1]

    return counters_of


def sink_specs(settings: Settings, registry: ExperimentRegistry | None = None,
               rollups: DerivedRecordPublisher | None = None, pairs: DerivedRecordPublisher | None = None,
               pairing: PairingAgent | None = None, store: Store | None = None) -> list[SinkSpec]:
    """Every topic the worker stores, with its decoder and table."""
    max_bytes = settings.max_record_bytes
    limits = limits_from(settings)
    encoding = settings.otlp_encoding
    place = Correlator(registry, settings.correlation_lateness)
    clean = redactor_for(settings)
    unique_pairs = PairDeduplicator(store)  # without a store (replay): remembers what it has seen

    def rollup(cells_of):
        if rollups is None:
            return None
        return lambda token, decoded: rollups.publish(encode_rollups(token, cells_of(decoded.rows)))

    counters_of = custom_counters(registry)

    def requests_after_store(token, decoded):
        # The stream pairing of legs from emitters other than the gateway, sent as one batch
        # record per pairs partition (each pair on the partition its key picks).
        assert pairing is not None and pairs is not None  # (used only when both are given)
        records = pairing.after_store(token, decoded)
        if records:
            # no batch larger than the pairs sink's own record limit takes: it would be dead-lettered
            pairs.publish(batch_by_partition(records, pairs.partitions(), max_bytes=min(BATCH_BYTES, max_bytes)))

    projection = ExperimentProjection(KafkaHistory(settings.bootstrap), max_bytes)
    return [
        SinkSpec(name="alerts", topic=settings.topic_alerts, table="alerts", columns=ALERT_COLUMNS,
                 # the alerts table has no TTL: no lower bound from HUB_TTL_DAYS
                 decode=lambda messages: clean.alerts(decode_alerts(messages, max_bytes, limits.without_ttl()))),
        # every event stored with the lifecycle fold's verdict on it (hub/experiments/projection.py)
        SinkSpec(name="experiments", topic=settings.topic_experiments, table="experiment_events",
                 columns=PROJECTION_COLUMNS,
                 decode=lambda messages: clean.experiment_events(projection.decode(messages))),
        SinkSpec(name="requests", topic=settings.topic_requests, table="requests", columns=REQUEST_COLUMNS,
                 decode=lambda messages: decode_request_legs(messages, max_bytes, limits),
                 place=lambda batches: [clean.requests(batch) for batch in place.requests(batches)],
                 after_ledger=rollup(lambda rows: request_cells(rows, counters_of)),
                 after_store=requests_after_store if pairs is not None and pairing is not None else None),
        SinkSpec(name="pairs", topic=settings.topic_pairs, table="shadow_pairs", columns=PAIR_COLUMNS,
                 # one row per pair_id: a pair published again is dropped (hub/shadow/dedupe.py)
                 decode=lambda messages: decode_pairs(messages, max_bytes, limits),
                 place=lambda batches: [clean.pairs(unique_pairs(batch)) for batch in place.pairs(batches)],
                 after_ledger=rollup(pair_cells)),
        SinkSpec(name="spans", topic=settings.topic_spans, table="otel_traces", columns=TRACE_COLUMNS,
                 decode=lambda messages: decode_spans(messages, encoding, max_bytes, limits),
                 place=lambda batches: [clean.spans(batch) for batch in place.spans(batches)],
                 after_ledger=rollup(span_cells)),
        SinkSpec(name="logs", topic=settings.topic_logs, table="otel_logs", columns=LOG_COLUMNS,
                 decode=lambda messages: clean.logs(decode_logs(messages, encoding, max_bytes, limits))),
        SinkSpec(name="metrics", topic=settings.topic_metrics, table="", columns=(),
                 decode=lambda messages: clean.metrics(
                     decode_metrics(messages, encoding, max_bytes, limits).table_batch())),
    ]


_REDACTORS: dict = {}


def redactor_for(settings: Settings) -> Redactor:
    """One redactor (policy and counters) per policy file for the process."""
    key = settings.redaction_policy
    if key not in _REDACTORS:
        _REDACTORS[key] = Redactor(load_policy(settings.redaction_policy),
                                   key=ensure_key(settings.home_dir, settings.redaction_key))
    return _REDACTORS[key]


def build_sinks(settings: Settings, store: Store, registry: ExperimentRegistry | None = None,
                rollups: DerivedRecordPublisher | None = None, pairs: DerivedRecordPublisher | None = None,
                pairing: PairingAgent | None = None, pipelined: bool = False) -> list[ExactlyOnceSink]:
    dead_letters = RedactingDeadLetterPublisher(store, settings.bootstrap, settings.topic_dlq,
                                                redactor=redactor_for(settings))
    return [ExactlyOnceSink(store, spec, dead_letters, KafkaRangeFetcher(settings.bootstrap), pipelined=pipelined)
            for spec in sink_specs(settings, registry, rollups, pairs, pairing, store=store)]


def topics_to_create(settings: Settings) -> dict[str, int]:
    topics = {spec.topic: settings.partitions for spec in sink_specs(settings)}
    topics[settings.topic_dlq] = settings.partitions
    topics[settings.topic_rollups] = settings.partitions
    topics[settings.topic_pairs] = settings.partitions
    # the raw telemetry topics hold data not yet redacted: a short retention (docs/redaction.md); the
    # rollups too, which carry values derived before redaction (example ids, gateway and backend names)
    # and are read back only over the judge's horizon
    raw = (settings.topic_requests, settings.topic_pairs, settings.topic_spans, settings.topic_logs,
           settings.topic_metrics, settings.topic_rollups)
    return TopicPlan(topics, retention_configs(raw, settings.raw_topic_retention_hours))
