"""Every experiment's current state, held by each worker and kept up to date from ``hub.experiments``.

Each worker reads *all* partitions of the experiment log (it is small), outside any consumer
group, so that any worker can place any record on its experiment. ``known_until`` is the wall
clock instant up to which the registry is known to hold every event appended to the log: the
sink waits for it to pass a batch's newest event time plus the allowed lateness before it
correlates, so a record that arrives before the event opening its window still lands right.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Callable

from hub.experiments.events import BadEvent, decode_event
from hub.experiments.lifecycle import ExperimentState, InvalidTransition, apply

log = logging.getLogger(__name__)


class ExperimentRegistry:
    def __init__(self, bootstrap: str, topic: str, poll_interval: float = 0.1):
        self.bootstrap = bootstrap
        self.topic = topic
        self.poll_interval = poll_interval
        self.states: dict[str, ExperimentState] = {}
        self.known_until = 0.0
        self.skipped = 0
        self.version = 0  # bumped on every applied event, so readers can cache derived indexes
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._listeners: list[Callable[[object], None]] = []
        self._positions: dict = {}
        self._probe: Any = None  # a KafkaConsumer for end offsets, used by threads that wait (wait_until_known)
        self._probe_lock = threading.Lock()

    # ---- reading -------------------------------------------------------------------------
    def snapshot(self) -> dict[str, ExperimentState]:
        with self._lock:
            return dict(self.states)

    def on_event(self, listener: Callable[[object], None]) -> None:
        """Call ``listener(event)`` for every event applied (in the registry's thread)."""
        self._listeners.append(listener)

    def apply_value(self, value: bytes) -> None:
        try:
            event = decode_event(value)
        except BadEvent as exc:
            self.skipped += 1
            log.warning("skipping an unreadable experiment event: %s", exc)
            return
        with self._lock:
            try:
                self.states[event.experiment_id] = apply(self.states.get(event.experiment_id), event)
            except InvalidTransition as exc:
                self.skipped += 1
                log.warning("skipping an experiment event that does not apply: %s", exc)
                return
            self.version += 1
        for listener in self._listeners:
            try:
                listener(event)
            except Exception:  # a listener must never stop the registry
                log.exception("experiment event listener failed")

    def has_open_experiments(self) -> bool:
        """True while any experiment is a draft, ready or running (its timeline may still move)."""
        with self._lock:
            return any(state.status in ("draft", "ready", "running") for state in self.states.values())

    def wait_until_known(self, instant: float, max_wait: float) -> bool:
        """Block until every event appended before ``instant`` (wall clock) is applied, or give up.

        Once ``instant`` has passed, the caller asks the broker itself for the log's end offsets
        and waits only until the follower has applied up to them: the follower thread's own
        ``known_until`` can lag by up to a second when a busy sink thread holds the interpreter,
        and the sink is the one waiting.
        """
        deadline = time.monotonic() + max_wait
        while self.known_until < instant:
            if time.monotonic() >= deadline or self._stop.is_set():
                return False
            ahead = instant - time.time()
            if ahead > 0:
                time.sleep(min(ahead, max(0.0, deadline - time.monotonic())) + 0.001)
                continue
            if self._thread is None:  # not following the log (tools): only the follower can know
                time.sleep(0.02)
                continue
            checked_at = time.time()
            try:
                ends = self._end_offsets()
            except Exception:  # the broker is away: fall back on the follower's own progress
                log.warning("could not read the experiment log's end offsets", exc_info=True)
                time.sleep(0.02)
                continue
            while any(self._positions.get(tp, 0) < end for tp, end in ends.items()):
                if time.monotonic() >= deadline or self._stop.is_set():
                    return False
                time.sleep(0.005)
            with self._lock:
                self.known_until = max(self.known_until, checked_at)
        return True

    def _end_offsets(self) -> dict:
        """The log's end offsets now, read by the calling thread with a consumer of its own."""
        from kafka import TopicPartition

        from hub.runtime import clients

        with self._probe_lock:
            if self._probe is None:
                self._probe = clients.consumer(self.bootstrap)
            partitions = self._probe.partitions_for_topic(self.topic) or set()
            if not partitions:
                return {}
            return self._probe.end_offsets([TopicPartition(self.topic, p) for p in sorted(partitions)])

    def index(self):
        """A TargetIndex of the current states, rebuilt only when an event was applied since."""
        from hub.experiments.correlate import TargetIndex

        cached = getattr(self, "_index", None)
        if cached is None or cached[0] != self.version:
            with self._lock:
                cached = (self.version, TargetIndex(self.states.values()))
            self._index = cached
        return cached[1]

    def load_all(self) -> "ExperimentRegistry":
        """Read the whole log once, without following it (replay, tools): everything is known."""
        from hub.experiments.log import read_log

        for _, _, value in read_log(self.bootstrap, self.topic):
            self.apply_value(value)
        self.known_until = float("inf")
        return self

    # ---- the follower thread ---------------------------------------------------------------
    def start(self) -> "ExperimentRegistry":
        self._thread = threading.Thread(target=self._run, name="experiment-registry", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(5)
        with self._probe_lock:
            if self._probe is not None:
                self._probe.close()
                self._probe = None

    def _run(self) -> None:
        from kafka import TopicPartition

        from hub.runtime import clients

        while not self._stop.is_set():
            try:
                consumer = clients.consumer(self.bootstrap, auto_offset_reset="earliest")
                assigned: list = []
                positions = self._positions  # kept across reconnects: never apply an event twice
                while not self._stop.is_set():
                    checked_at = time.time()
                    partitions = consumer.partitions_for_topic(self.topic) or set()
                    if len(partitions) != len(assigned):
                        assigned = [TopicPartition(self.topic, p) for p in sorted(partitions)]
                        consumer.assign(assigned)
                        for tp in assigned:
                            consumer.seek(tp, positions.get(tp, 0))
                    if not assigned:
                        self.known_until = max(self.known_until, checked_at)
                        time.sleep(self.poll_interval)
                        continue
                    end = consumer.end_offsets(assigned)
                    for tp, records in consumer.poll(timeout_ms=int(self.poll_interval * 1000)).items():
                        for record in records:
                            self.apply_value(record.value)
                            positions[tp] = record.offset + 1
                    if all(consumer.position(tp) >= end[tp] for tp in assigned):
                        self.known_until = max(self.known_until, checked_at)
            except Exception:
                log.exception("experiment registry lost its consumer; reconnecting")
                time.sleep(1.0)
