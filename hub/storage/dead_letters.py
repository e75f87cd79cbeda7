"""The dead-letter path: invalid records go to the ``hub.dlq`` topic and the ``dead_letters`` table."""

from __future__ import annotations

import logging
from typing import Sequence

from hub.errors import InvalidRecord, RecoverableError
from hub.records.decode import DEAD_LETTER_COLUMNS, RawMessage, dead_letter_row, to_dead_letter
from hub.storage.client import Store

log = logging.getLogger(__name__)


class DeadLetterPublisher:
    """Publishes each invalid record with its reason and source coordinates, then stores it.

    The table insert carries the chunk's token, so a re-run after a crash stores it once; the
    topic is at-least-once (a crash between publishing and acking can publish a record twice).
    """

    def __init__(self, store: Store, bootstrap: str, topic: str, publish: bool = True, redactor=None):
        self.store = store
        # Dead letters keep the original record for diagnosis; like everything stored, redacted first.
        self.redactor = redactor
        self.publish_to_topic = publish  # False when rebuilding the table (replay): they are on the topic already
        self.bootstrap = bootstrap
        self.topic = topic
        self._producer = None

    def _kafka(self):
        if self._producer is None:
            from kafka import KafkaProducer

            self._producer = KafkaProducer(bootstrap_servers=self.bootstrap, acks="all",
                                           linger_ms=5, retries=5)
        return self._producer

    def publish(self, invalid: Sequence[InvalidRecord], raws: Sequence[RawMessage], token: str) -> None:
        if self.redactor is not None:
            raws = [raw._replace(value=self.redactor.dead_letter_value(raw.value) if raw.value else raw.value)
                    for raw in raws]
            invalid = [InvalidRecord(self.redactor.text(i.reason), i.topic, i.partition, i.offset, index=i.index)
                       for i in invalid]
        if self.publish_to_topic:
            producer = self._kafka()
            futures = []
            for record, raw in zip(invalid, raws):
                key = f"{raw.topic}:{raw.partition}:{raw.offset}".encode()
                futures.append(producer.send(self.topic, key=key, value=to_dead_letter(record, raw)))
            producer.flush(timeout=30)
            for future in futures:
                if future.failed():
                    raise RecoverableError(f"dead-letter publish failed: {future.exception}")
        self.store.insert(f"{self.store.database}.dead_letters",
                          [dead_letter_row(r, raw) for r, raw in zip(invalid, raws)],
                          DEAD_LETTER_COLUMNS, token=token)

    def close(self) -> None:
        if self._producer is not None:
            self._producer.close(timeout=5)
            self._producer = None
