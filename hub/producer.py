"""Bulk sending of records to a topic for the CLI (``hub emit``): batched, acknowledged, with progress."""

from __future__ import annotations

import time
from typing import Callable, Iterable

from hub.errors import HubError


def send_records(bootstrap: str, topic: str, records: Iterable[tuple[bytes | None, bytes]],
                 progress: Callable[[str], None] | None = None, every: int = 20_000) -> tuple[int, float]:
    """Send (key, value) pairs and wait until the broker acknowledged all of them.

    Returns (records sent, seconds). Raises HubError if any record was not acknowledged.
    """
    from kafka import KafkaProducer
    from kafka.errors import KafkaError, NoBrokersAvailable

    try:
        producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=20,
                                 batch_size=512 * 1024, max_request_size=4 * 1024 * 1024,
                                 compression_type=None, retries=10)
    except NoBrokersAvailable:
        raise HubError(f"no Kafka broker answers at {bootstrap} (is the hub up? `hub up`)") from None
    failures: list[BaseException] = []

    def on_error(exc: BaseException) -> None:
        failures.append(exc)

    started = time.perf_counter()
    count = 0
    try:
        for key, value in records:
            producer.send(topic, key=key, value=value).add_errback(on_error)
            count += 1
            if progress and count % every == 0:
                rate = count / max(time.perf_counter() - started, 1e-9)
                progress(f"  sent {count:,} records ({rate:,.0f}/s)")
        producer.flush(timeout=120)
    except KafkaError as exc:
        raise HubError(f"sending to {topic} failed: {exc}") from None
    finally:
        producer.close(timeout=10)
    if failures:
        raise HubError(f"{len(failures)} of {count} records were not acknowledged: {failures[0]}")
    return count, time.perf_counter() - started
