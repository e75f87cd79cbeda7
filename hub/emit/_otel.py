"""``KafkaSpanExporter``: OpenTelemetry spans to Kafka, as the Collector's Kafka exporter writes them.

Each ``export`` call becomes one Kafka record (more only if the request would exceed
``max_record_bytes``, in which case the spans are split in halves until each part fits) whose
value is an ``ExportTraceServiceRequest``: serialized protobuf (``otlp_proto``, the Collector's
default) or OTLP/JSON (``otlp_json``: the protobuf JSON mapping with lowerCamelCase names, trace
and span ids in hex, enums as integers, 64-bit integers as strings). Records carry no key, like
the Collector's exporter by default.

Use it behind ``BatchSpanProcessor``: the processor calls ``export`` on its own thread, so the
application never waits for Kafka; spans that do not fit the processor's queue are dropped by the
processor. ``export`` waits up to ``timeout`` seconds for the broker's acknowledgement and returns
``SpanExportResult.FAILURE`` (it never raises) when the broker cannot be reached.
"""

from __future__ import annotations

import base64
import logging
import threading
import time
from typing import Any, Final, Sequence

import orjson
from google.protobuf.json_format import MessageToDict
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

__all__ = ["KafkaSpanExporter", "otlp_json"]

log = logging.getLogger("hub.emit")

ENCODINGS: Final = ("otlp_proto", "otlp_json")
_ID_KEYS: Final = frozenset({"traceId", "spanId", "parentSpanId"})


def otlp_json(request) -> bytes:
    """A protobuf OTLP request in OTLP/JSON as the Collector writes it (ids in hex)."""

    def fix(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key in _ID_KEYS and isinstance(value, str):
                    node[key] = base64.b64decode(value).hex()
                else:
                    fix(value)
        elif isinstance(node, list):
            for value in node:
                fix(value)

    doc = MessageToDict(request, use_integers_for_enums=True)
    fix(doc)
    return orjson.dumps(doc)


class KafkaSpanExporter(SpanExporter):
    """A ``SpanExporter`` writing OTLP trace requests to a Kafka topic (default ``otlp_spans``).

    The producer connects lazily on the first export; when it cannot, that export fails and the
    next one tries again. ``shutdown()`` flushes and closes the producer.
    """

    def __init__(
        self,
        bootstrap: str,
        topic: str = "otlp_spans",
        encoding: str = "otlp_proto",
        *,
        timeout: float = 10.0,
        acks: int | str = "all",
        max_record_bytes: int = 900_000,
        producer_config: dict[str, Any] | None = None,
    ):
        if encoding not in ENCODINGS:
            raise ValueError(f"encoding must be one of {', '.join(ENCODINGS)}, not {encoding!r}")
        self.bootstrap = bootstrap
        self.topic = topic
        self.encoding = encoding
        self._timeout = float(timeout)
        self._acks = acks
        self._max_record_bytes = max_record_bytes
        self._producer_config = dict(producer_config or {})
        self._producer = None
        self._lock = threading.Lock()
        self._shutdown = False
        self._last_warning = 0.0
        self.exported_spans = 0
        self.failed_spans = 0

    # ---- SpanExporter ------------------------------------------------------------------------

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        if self._shutdown:
            return SpanExportResult.FAILURE
        if not spans:
            return SpanExportResult.SUCCESS
        try:
            values = self._encode(list(spans))
            producer = self._get_producer()
            futures = [producer.send(self.topic, value=value) for value in values]
            deadline = time.monotonic() + self._timeout
            for future in futures:
                future.get(timeout=max(0.0, deadline - time.monotonic()))
        except Exception as exc:
            self.failed_spans += len(spans)
            self._warn(f"could not export {len(spans)} spans to {self.topic}: {type(exc).__name__}: {exc}")
            return SpanExportResult.FAILURE
        self.exported_spans += len(spans)
        return SpanExportResult.SUCCESS

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        producer = self._producer
        if producer is None:
            return True
        try:
            producer.flush(timeout=timeout_millis / 1000)
            return True
        except Exception as exc:
            self._warn(f"flush of {self.topic} failed: {type(exc).__name__}: {exc}")
            return False

    def shutdown(self) -> None:
        if self._shutdown:
            return
        self._shutdown = True
        with self._lock:
            producer, self._producer = self._producer, None
        if producer is not None:
            try:
                producer.flush(timeout=self._timeout)
            except Exception as exc:
                self._warn(f"flush of {self.topic} at shutdown failed: {type(exc).__name__}: {exc}")
            try:
                producer.close(timeout=min(self._timeout, 5.0))
            except Exception:
                pass

    # ---- internals ---------------------------------------------------------------------------

    def _encode(self, spans: list[ReadableSpan]) -> list[bytes]:
        request = encode_spans(spans)
        value = request.SerializeToString() if self.encoding == "otlp_proto" else otlp_json(request)
        if len(value) <= self._max_record_bytes or len(spans) == 1:
            return [value]
        half = len(spans) // 2
        return self._encode(spans[:half]) + self._encode(spans[half:])

    def _get_producer(self):
        with self._lock:
            if self._producer is None:
                from hub.runtime import clients

                timeout_ms = max(100, int(self._timeout * 1000))
                config: dict[str, Any] = {
                    "client_id": "hub-emit-spans",
                    "acks": self._acks,
                    "linger_ms": 5,
                    "bootstrap_timeout_ms": timeout_ms,
                    "max_block_ms": timeout_ms,
                    "request_timeout_ms": max(timeout_ms, 1000),
                    "delivery_timeout_ms": max(timeout_ms, 1000) + 10,
                    "reconnect_backoff_max_ms": 5000,
                }
                config.update(self._producer_config)
                self._producer = clients.producer(self.bootstrap, max_record_bytes=self._max_record_bytes, **config)
            return self._producer

    def _warn(self, message: str) -> None:
        now = time.monotonic()
        if now - self._last_warning >= 30.0:
            self._last_warning = now
            log.warning("hub.emit KafkaSpanExporter: %s", message)
