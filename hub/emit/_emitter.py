"""``EventEmitter``: a non-blocking sender of CloudEvents to a hub topic.

The caller's path does two things: build the event and append it to a bounded in-memory buffer
(or count it as dropped when the buffer is full). Everything that may wait or fail happens on
one background thread: connecting (lazily, with backoff), looking up the topic's partitions,
packing events per partition into CloudEvents batches, and sending them with kafka-python's
``KafkaProducer``. Delivery results come back on the producer's own I/O thread and only update
counters.

Accounting: every event passed to ``emit``/``emit_leg`` ends up in exactly one of
``sent``, ``dropped_buffer_full``, ``dropped_send_failed``, ``dropped_invalid`` or
``dropped_closed``; until then it is counted in ``queued``.
"""

from __future__ import annotations

import atexit
import collections
import itertools
import logging
import os
import random
import threading
import time
import weakref
from typing import Any, Final

import msgspec

from hub.records.generate import encode_event
from hub.records.request_leg import RequestLeg, new_event
from hub.retry import Backoff
from hub.runtime.clients import BatchPacker, batch_value, murmur2, partition_for

__all__ = ["EventEmitter", "partition_for", "murmur2"]

log = logging.getLogger("hub.emit")

DEFAULT_SOURCE: Final = "/emitters/python"
#: The waits after a failed connect or send: 0.2 s doubling to 5 s, from the start again once connected.
RECONNECT_BACKOFF: Final = Backoff(0.2, cap=5.0)
_OBJECT_DECODER: Final = msgspec.json.Decoder(dict)
_V4_CLEAR: Final = ~((0xF000 << 64) | (0xC000 << 48))
_V4_SET: Final = (0x4000 << 64) | (0x8000 << 48)


class EventEmitter:
    """Send events to Kafka in the background; never block or raise on the caller's path.

    ``emit(key, value)`` takes one CloudEvent in structured JSON mode (bytes) keyed by its
    correlation id; ``emit_leg(leg, **envelope)`` builds the envelope for a ``RequestLeg``
    (``hub.records.request_leg.new_event``) and keys it by ``leg.correlation_id``. Both return
    at once: ``True`` if the event was buffered, ``False`` if it was dropped (buffer full,
    invalid, or the emitter is closed).

    A background thread sends buffered events every ``linger`` seconds, or sooner once
    ``batch_events`` are waiting. Events of one partition (murmur2 of the key, as Kafka's
    default partitioner) are packed up to ``batch_events`` per Kafka record as a CloudEvents
    batch (a JSON array), so all legs of one request share a partition. While the broker is
    unreachable, events wait in the buffer (new ones are dropped once it is full); events handed
    to the producer that are not acknowledged within ``delivery_timeout`` seconds (retries
    included) are counted in ``dropped_send_failed``. A warning with the counts of what was
    dropped is logged at most every ``report_interval`` seconds on the logger ``hub.emit``.

    Kafka record batches are compressed with ``compression`` (``gzip`` by default, None for
    none): kafka-python checksums batches in pure Python unless the ``crc32c`` package is
    installed, and compressed batches are cheaper to checksum. The hub's worker (aiokafka) reads
    gzip without extra packages; ``lz4``, ``snappy`` and ``zstd`` need ``cramjam`` there.
    ``producer_config`` is passed to ``KafkaProducer`` last (security settings, for example).
    """

    def __init__(
        self,
        bootstrap: str,
        topic: str = "hub.requests",
        *,
        max_buffer: int = 10_000,
        batch_events: int = 100,
        linger: float = 0.05,
        source: str = DEFAULT_SOURCE,
        acks: int | str = "all",
        compression: str | None = "gzip",
        delivery_timeout: float = 30.0,
        max_record_bytes: int = 900_000,
        report_interval: float = 30.0,
        producer_config: dict[str, Any] | None = None,
    ):
        if max_buffer < 1:
            raise ValueError("max_buffer must be at least 1")
        if batch_events < 1:
            raise ValueError("batch_events must be at least 1")
        if acks not in (0, 1, -1, "all", "0", "1", "-1"):
            raise ValueError(f"acks must be 0, 1 or 'all', not {acks!r}")
        self.bootstrap = bootstrap
        self.topic = topic
        self.source = source
        self._max_buffer = max_buffer
        self._batch_events = batch_events
        self._linger = max(0.0, float(linger))
        self._acks = acks
        self._compression = compression
        self._delivery_timeout = float(delivery_timeout)
        self._max_record_bytes = max_record_bytes
        self._report_interval = float(report_interval)
        self._producer_config = dict(producer_config or {})

        self._buffer: collections.deque[tuple[bytes | None, Any]] = collections.deque()
        self._lock = threading.Lock()
        self._settled = threading.Condition(self._lock)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._closed = False
        self._final = False  # after close: late delivery reports no longer change counters
        self._urgent = 0  # flush() calls waiting: send partial batches without lingering

        # counters (under self._lock)
        self._queued = 0
        self._sent = 0
        self._batches = 0
        self._dropped = {"dropped_buffer_full": 0, "dropped_send_failed": 0,
                         "dropped_invalid": 0, "dropped_closed": 0}
        self._in_flight = 0
        self._reported = dict(self._dropped)
        self._last_report = time.monotonic()
        self._last_error = ""
        self._connected = False
        self._round_robin = itertools.count()
        self._random = random.Random(os.urandom(32))
        self._close_timeout = 0.0

        self._thread = threading.Thread(target=self._run, name=f"hub-emit-{topic}", daemon=True)
        self._thread.start()
        ref = weakref.ref(self)

        def close_at_exit() -> None:
            emitter = ref()
            if emitter is not None:
                emitter.close(timeout=2.0)

        self._atexit = close_at_exit
        atexit.register(close_at_exit)

    # ---- the caller's path -------------------------------------------------------------------

    def emit(self, key: bytes | str | None, value: bytes) -> bool:
        """Buffer one CloudEvent (structured JSON bytes); returns False if it was dropped."""
        try:
            if isinstance(key, str):
                key = key.encode()
            elif key is not None and type(key) is not bytes:
                key = bytes(key)
            if type(value) is not bytes:
                value = value.encode() if isinstance(value, str) else bytes(value)
        except Exception:
            return self._count_drop("dropped_invalid")
        return self._put(key, value)

    def emit_leg(self, leg: RequestLeg, **envelope: Any) -> bool:
        """Buffer one request leg; returns False if it was dropped.

        ``envelope`` goes to ``new_event`` (``source``, ``id``, ``time``, ``experimentid``,
        ``experimentphase``); ``source`` defaults to the emitter's, ``time`` to the leg's
        ``event_time``, the experiment attributes to the leg's. The envelope is built and encoded
        on the background thread (an unusable one is counted in ``dropped_invalid``), so this
        call costs a few microseconds.
        """
        try:
            key = leg.correlation_id.encode()
        except Exception:
            return self._count_drop("dropped_invalid")
        return self._put(key, (leg, envelope))

    def _put(self, key: bytes | None, payload: Any) -> bool:
        if self._closed:
            return self._count_drop("dropped_closed")
        with self._lock:
            if len(self._buffer) >= self._max_buffer:
                self._dropped["dropped_buffer_full"] += 1
                return False
            self._buffer.append((key, payload))
            self._queued += 1
            waiting = len(self._buffer)
        if waiting >= self._batch_events and not self._wake.is_set():
            self._wake.set()
        return True

    def _count_drop(self, reason: str) -> bool:
        with self._lock:
            self._dropped[reason] += 1
        return False

    # ---- introspection and lifecycle ---------------------------------------------------------

    def stats(self) -> dict[str, int]:
        """Counters: ``queued`` (buffered or awaiting acknowledgement), ``sent`` (events
        acknowledged by the broker), ``batches`` (Kafka records acknowledged), and the drops by
        reason (``dropped_buffer_full``, ``dropped_send_failed``, ``dropped_invalid``,
        ``dropped_closed``)."""
        with self._lock:
            return {"queued": self._queued, "sent": self._sent, **self._dropped,
                    "batches": self._batches, "buffered": len(self._buffer),
                    "connected": int(self._connected)}

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every event emitted so far is sent or dropped; False on timeout.

        Blocks the calling thread (up to ``timeout``): call it at shutdown or in tests, not on a
        request path.
        """
        deadline = time.monotonic() + max(0.0, timeout)
        with self._lock:
            self._urgent += 1
        try:
            self._wake.set()
            with self._settled:
                while self._queued > 0:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        return False
                    self._settled.wait(min(remaining, 0.1))
                    self._wake.set()
            return True
        finally:
            with self._lock:
                self._urgent -= 1

    def close(self, timeout: float = 10.0) -> None:
        """Stop accepting events, send what is buffered (up to ``timeout`` seconds) and stop.

        Events still unsent when the time is up are counted in ``dropped_send_failed``.
        """
        if self._closed:
            return
        self._closed = True
        atexit.unregister(self._atexit)
        deadline = time.monotonic() + max(0.0, timeout)
        self.flush(max(0.0, deadline - time.monotonic()))
        self._close_timeout = max(0.0, deadline - time.monotonic())
        self._stop.set()
        self._wake.set()
        self._thread.join(max(0.1, deadline - time.monotonic()))
        with self._lock:
            left = self._queued
            self._buffer.clear()
            self._dropped["dropped_send_failed"] += left
            self._queued = 0
            self._final = True
            self._settled.notify_all()
        self._report(force=True)

    def __enter__(self) -> "EventEmitter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"EventEmitter({self.bootstrap!r}, {self.topic!r})"

    # ---- the background thread ---------------------------------------------------------------

    def _run(self) -> None:
        producer = None
        waits = RECONNECT_BACKOFF.waits()
        try:
            while True:
                if not self._stop.is_set():
                    if len(self._buffer) < self._batch_events and not (self._urgent and self._buffer):
                        self._wake.wait(self._linger)
                    self._wake.clear()
                try:
                    if producer is None:
                        producer = self._connect()
                        waits = RECONNECT_BACKOFF.waits()
                    self._drain(producer)
                except Exception as exc:  # broker down, metadata timeout, anything else
                    self._note_error(exc)
                    if self._stop.is_set():
                        break
                    self._stop.wait(next(waits))  # returns early on close
                self._report()
                if self._stop.is_set() and (not self._buffer or producer is None):
                    break
        finally:
            if producer is not None:
                try:
                    producer.flush(timeout=self._close_timeout)
                except Exception as exc:
                    self._note_error(exc)
                try:
                    producer.close(timeout=min(self._close_timeout, 1.0))
                except Exception as exc:
                    self._note_error(exc)
            with self._lock:
                self._connected = False

    def _connect(self):
        from hub.runtime import clients

        acks = "all" if self._acks in ("all", -1, "-1") else int(self._acks)
        delivery_ms = max(1000, int(self._delivery_timeout * 1000))
        config: dict[str, Any] = {
            "client_id": "hub-emit",
            "acks": acks,
            "compression_type": self._compression,
            "linger_ms": 5,
            "batch_size": 256 * 1024,
            "delivery_timeout_ms": delivery_ms,
            "request_timeout_ms": min(10_000, delivery_ms - 10),
            "max_block_ms": 5000,
            "bootstrap_timeout_ms": 5000,
            "reconnect_backoff_max_ms": 5000,
        }
        config.update(self._producer_config)
        producer = clients.producer(self.bootstrap, max_record_bytes=self._max_record_bytes,
                                    **config)
        try:
            # close() owns the producer's shutdown (its own exit hook would run before ours and
            # fail what is still buffered here)
            producer._unregister_cleanup()
        except Exception:
            pass
        with self._lock:
            self._connected = True
        return producer

    def _drain(self, producer) -> None:
        """Move buffered events into the producer, packed per partition."""
        if not self._buffer:
            return
        partitions = sorted(producer.partitions_for(self.topic))  # waits at most max_block_ms
        packer = BatchPacker(partitions, self._batch_events, self._max_record_bytes, self._round_robin)
        buffer = self._buffer
        while buffer:
            if self._in_flight >= self._max_buffer and not self._stop.is_set():
                # the producer holds as many events as the buffer: let acknowledgements catch up
                self._send_all(producer, packer)
                time.sleep(0.005)
                continue
            key, payload = buffer.popleft()
            value = self._encode(payload)
            if value is None:
                continue
            batch = packer.add(key, value)
            if batch is not None:
                self._send(producer, *batch)
        self._send_all(producer, packer)

    def _send_all(self, producer, packer: BatchPacker) -> None:
        for batch in packer.flush():
            self._send(producer, *batch)

    def _encode(self, payload) -> bytes | None:
        """The event's bytes, or None (counted as invalid) if it cannot be sent."""
        try:
            if type(payload) is tuple:  # (leg, envelope) from emit_leg
                leg, envelope = payload
                envelope.setdefault("source", self.source)
                envelope.setdefault("time", leg.event_time)
                if envelope.get("id") is None:
                    envelope["id"] = self._new_id()
                if leg.experiment_id:
                    envelope.setdefault("experimentid", leg.experiment_id)
                if leg.phase:
                    envelope.setdefault("experimentphase", leg.phase)
                value = encode_event(new_event(leg, **envelope))
            else:
                value = payload
                _OBJECT_DECODER.decode(value)  # one JSON object, or it would spoil its batch
            if len(value) + 2 > self._max_record_bytes:
                raise ValueError(f"event of {len(value)} bytes exceeds max_record_bytes")
            return value
        except Exception as exc:
            with self._lock:
                self._dropped["dropped_invalid"] += 1
                self._queued -= 1
                self._last_error = f"invalid event: {type(exc).__name__}: {exc}"
                self._settled.notify_all()
            return None

    def _new_id(self) -> str:
        """A random version-4 UUID string for an envelope ``id``.

        Drawn from a generator seeded once from the OS: ``uuid.uuid4()`` reads ``os.urandom`` for
        every id, and each of those system calls hands the GIL to the application's threads
        (about 40 µs per event under load). Ids need to be unique, not secret.
        """
        h = "%032x" % ((self._random.getrandbits(128) & _V4_CLEAR) | _V4_SET)
        return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"

    def _send(self, producer, partition: int, key: bytes | None, values: list[bytes]) -> None:
        n = len(values)
        if n == 1 and self._batch_events == 1:
            value = values[0]
        else:
            value = batch_value(values)
        with self._lock:
            self._in_flight += n
        try:
            future = producer.send(self.topic, value=value, key=key, partition=partition)
        except Exception as exc:
            self._failed(n, exc)
            return
        future.add_callback(self._delivered, n)
        future.add_errback(self._failed, n)

    def _delivered(self, n: int, _metadata=None) -> None:
        with self._lock:
            self._in_flight -= n
            if self._final:
                return
            self._sent += n
            self._batches += 1
            self._queued -= n
            if self._queued <= 0:
                self._settled.notify_all()

    def _failed(self, n: int, exc: BaseException) -> None:
        with self._lock:
            self._in_flight -= n
            self._last_error = f"{type(exc).__name__}: {exc}"
            if self._final:
                return
            self._dropped["dropped_send_failed"] += n
            self._queued -= n
            if self._queued <= 0:
                self._settled.notify_all()

    def _note_error(self, exc: BaseException) -> None:
        with self._lock:
            self._last_error = f"{type(exc).__name__}: {exc}"

    def _report(self, force: bool = False) -> None:
        """Log what was dropped since the last report, at most every ``report_interval`` s."""
        now = time.monotonic()
        if not force and now - self._last_report < self._report_interval:
            return
        with self._lock:
            delta = {k: v - self._reported[k] for k, v in self._dropped.items()}
            if not any(delta.values()):
                return
            self._reported = dict(self._dropped)
            totals = dict(self._dropped)
            error = self._last_error
            since = now - self._last_report
            self._last_report = now
        detail = ", ".join(f"{k.removeprefix('dropped_').replace('_', ' ')}: {v}"
                           for k, v in delta.items() if v)
        log.warning("hub.emit dropped %d events for %s in the last %.0fs (%s); totals %s%s",
                    sum(delta.values()), self.topic, since, detail,
                    ", ".join(f"{k}={v}" for k, v in totals.items()),
                    f"; last error: {error}" if error else "")
