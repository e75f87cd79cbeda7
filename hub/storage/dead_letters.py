"""The dead-letter path: invalid records go to the ``hub.dlq`` topic and the ``dead_letters`` table.

A dead letter is always publishable: one larger than ``max_bytes`` (HUB_DEAD_LETTER_MAX_BYTES, below
the broker's default 1 MiB message size) carries a truncated payload, and its reason names the
original's length, its sha256 and its source coordinates, where the whole record stays. A broker
that still refuses the size (a topic with a smaller ``max.message.bytes``) makes it shrink again.
Nothing a record holds can make publishing raise anything but ``RecoverableError`` (the broker
is away: the sink retries with its one policy).
"""

from __future__ import annotations

import hashlib
import logging
from typing import Sequence

from hub.errors import InvalidRecord, RecoverableError, StoreRejected
from hub.records.decode import DEAD_LETTER_COLUMNS, RawMessage, dead_letter_row, element_bytes, to_dead_letter
from hub.storage.client import Store, first_line

log = logging.getLogger(__name__)

#: Below the broker's default message size (1 MiB) with room for the record's framing.
DEFAULT_MAX_BYTES = 786_432
#: The smallest size a dead letter is shrunk to before its payload is dropped altogether.
MIN_BYTES = 4096
#: A reason or key longer than this is cut (the payload is what a dead letter is for).
MAX_REASON_CHARS = 2000
MAX_KEY_BYTES = 1024


TRUNCATED = "[payload truncated:"


def fit(invalid: InvalidRecord, raw: RawMessage, max_bytes: int) -> tuple[InvalidRecord, RawMessage]:
    """The dead letter of ``raw`` within ``max_bytes`` as published (JSON, base64 payload):
    unchanged when it fits; else the payload (the record, or the event of a batch record) cut,
    the key cut, and the reason extended with the original's length, sha256 and coordinates
    (once: a letter already cut is only cut further)."""
    if TRUNCATED in invalid.reason:
        while raw.value and len(to_dead_letter(invalid, raw)) > max_bytes:
            raw = raw._replace(value=raw.value[:len(raw.value) * 3 // 4])
        return invalid, raw
    if len(invalid.reason) > MAX_REASON_CHARS:
        invalid = InvalidRecord(invalid.reason[:MAX_REASON_CHARS] + "...", invalid.topic, invalid.partition,
                                invalid.offset, index=invalid.index)
    try:
        if len(to_dead_letter(invalid, raw)) <= max_bytes:
            return invalid, raw
        payload = element_bytes(raw, invalid.index) or b""
    except Exception:  # noqa: BLE001 - a record that cannot even be read back is cut as it is
        payload = raw.value or b""
    digest = hashlib.sha256(payload).hexdigest()
    key = raw.key if raw.key is None or len(raw.key) <= MAX_KEY_BYTES else raw.key[:MAX_KEY_BYTES]
    reason = (f"{invalid.reason} {TRUNCATED} {len(payload)} bytes, sha256 {digest}; "
              f"the original is {raw.topic}[{raw.partition}] offset {raw.offset}"
              f"{'' if invalid.index < 0 else f' event {invalid.index}'}]")
    cut = InvalidRecord(reason, invalid.topic, invalid.partition, invalid.offset, index=invalid.index)
    empty = raw._replace(key=key, value=b"")
    overhead = len(to_dead_letter(cut, empty)) + 64
    room = max(0, (max_bytes - overhead) * 3 // 4)
    # The payload is stored as it is (index -1) so that the cut bytes are not parsed as a batch.
    cut = InvalidRecord(reason, invalid.topic, invalid.partition, invalid.offset, index=-1) \
        if invalid.index >= 0 else cut
    return cut, raw._replace(key=key, value=payload[:room])


def _is_size_error(exc: BaseException | None) -> bool:
    name = type(exc).__name__
    return name in ("MessageSizeTooLargeError", "RecordListTooLargeError") or "too large" in str(exc).lower()


class DeadLetterPublisher:
    """Publishes each invalid record with its reason and source coordinates, then stores it.

    The table insert carries the chunk's token, so a re-run after a crash stores it once; the
    topic is at-least-once (a crash between publishing and acking can publish a record twice).
    """

    def __init__(self, store: Store, bootstrap: str, topic: str, publish: bool = True, redactor=None,
                 max_bytes: int = DEFAULT_MAX_BYTES):
        self.store = store
        # Dead letters keep the original record for diagnosis; like everything stored, redacted first.
        self.redactor = redactor
        self.publish_to_topic = publish  # False when rebuilding the table (replay): they are on the topic already
        self.bootstrap = bootstrap
        self.topic = topic
        self.max_bytes = max_bytes
        self.truncated = 0  # dead letters published with a cut payload
        self._producer = None

    def _kafka(self):
        if self._producer is None:
            from hub.runtime import clients

            self._producer = clients.producer(self.bootstrap, acks="all", linger_ms=5, retries=5)
        return self._producer

    def _redact_reason(self, invalid: InvalidRecord) -> InvalidRecord:
        if self.redactor is None:
            return invalid
        reason = invalid.reason if len(invalid.reason) <= MAX_REASON_CHARS else invalid.reason[:MAX_REASON_CHARS] + "..."
        return InvalidRecord(self.redactor.text(reason), invalid.topic, invalid.partition, invalid.offset,
                             index=invalid.index)

    def _letter(self, invalid: InvalidRecord, raw: RawMessage, max_bytes: int) -> tuple[InvalidRecord, RawMessage]:
        """The letter as published: cut to ``max_bytes`` first (the note on the length and hash of
        the original is added after the reason is redacted, so masking never garbles it), then
        the payload that is kept redacted, and cut again if masking made it longer."""
        invalid, raw = fit(invalid, raw, max_bytes)
        if self.redactor is None or not raw.value:
            return invalid, raw
        try:
            value = self.redactor.dead_letter_value(raw.value)
        except Exception as exc:  # noqa: BLE001 - e.g. nesting too deep to walk: withheld, not leaked
            value = None
            invalid = InvalidRecord(f"{invalid.reason} [payload withheld: redaction failed: {first_line(exc)}]",
                                    invalid.topic, invalid.partition, invalid.offset, index=invalid.index)
        return fit(invalid, raw._replace(value=value), max_bytes)

    def publish(self, invalid: Sequence[InvalidRecord], raws: Sequence[RawMessage], token: str) -> None:
        originals = [(self._redact_reason(record), raw) for record, raw in zip(invalid, raws)]
        letters = []
        for record, raw in originals:
            letter = self._letter(record, raw, self.max_bytes)
            if TRUNCATED in letter[0].reason and TRUNCATED not in record.reason:
                self.truncated += 1
            letters.append(letter)
        if self.publish_to_topic:
            letters = self._send(letters, originals)
        rows = [dead_letter_row(r, raw) for r, raw in letters]
        try:
            self.store.insert(f"{self.store.database}.dead_letters", rows, DEAD_LETTER_COLUMNS, token=token)
        except StoreRejected:
            # One by one (a dead letter the table refuses is logged; it is on the topic).
            for i, (row, (_, raw)) in enumerate(zip(rows, letters)):
                try:
                    self.store.insert(f"{self.store.database}.dead_letters", [row], DEAD_LETTER_COLUMNS,
                                      token=f"{token}/r{i}")
                except StoreRejected as exc:
                    log.error("dead letter of %s[%d] offset %d refused by the table: %s",
                              raw.topic, raw.partition, raw.offset, exc.reason)

    def _send(self, letters: list[tuple[InvalidRecord, RawMessage]],
              originals: list[tuple[InvalidRecord, RawMessage]]) -> list[tuple[InvalidRecord, RawMessage]]:
        """Publish every letter; one the producer or the broker finds too large is shrunk and sent
        again. Returns the letters as published."""
        try:
            from kafka.errors import KafkaError
        except ImportError:  # pragma: no cover
            KafkaError = Exception  # noqa: N806
        producer = self._kafka()
        limits = [self.max_bytes] * len(letters)
        pending = list(range(len(letters)))
        while pending:
            futures = {}
            for i in pending:
                record, raw = letters[i]
                key = f"{raw.topic}:{raw.partition}:{raw.offset}".encode()
                try:
                    futures[i] = producer.send(self.topic, key=key, value=to_dead_letter(record, raw))
                except KafkaError as exc:
                    if not _is_size_error(exc):
                        raise RecoverableError(f"dead-letter publish failed: {first_line(exc)}") from exc
                    futures[i] = exc
            try:
                producer.flush(timeout=30)
            except KafkaError as exc:
                raise RecoverableError(f"dead-letter publish failed: {first_line(exc)}") from exc
            again: list[int] = []
            for i, future in futures.items():
                error = future if isinstance(future, BaseException) else (future.exception if future.failed() else None)
                if error is None and not isinstance(future, BaseException) and not future.is_done:
                    raise RecoverableError("dead-letter publish failed: not acknowledged in 30 s")
                if error is None:
                    continue
                if not _is_size_error(error):
                    raise RecoverableError(f"dead-letter publish failed: {first_line(error)}")
                if limits[i] <= MIN_BYTES:
                    raise RecoverableError(f"dead-letter publish failed: the broker refuses even "
                                           f"{MIN_BYTES} bytes: {first_line(error)}")
                limits[i] = max(limits[i] // 2, MIN_BYTES)
                record, raw = letters[i] = self._letter(*originals[i], limits[i])
                log.warning("dead letter of %s[%d] offset %d too large for the broker; cut to %d bytes",
                            raw.topic, raw.partition, raw.offset, limits[i])
                again.append(i)
            pending = again
        return letters

    def close(self) -> None:
        if self._producer is not None:
            self._producer.close(timeout=5)
            self._producer = None
