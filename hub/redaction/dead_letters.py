"""Dead letters stored and published redacted: key, reason and payload (``hub.redaction.columns``).

The publisher itself (``hub.storage.dead_letters``) masks the payload and the reason through the
redactor it is given; this one also redacts the key (kept when it is an id, else replaced) before
anything is published or stored. The raw record stays on its source topic, reachable by the
topic, partition and offset the dead letter carries, for as long as that topic keeps it.
"""

from __future__ import annotations

from typing import Sequence

from hub.errors import InvalidRecord
from hub.records.decode import RawMessage
from hub.storage.dead_letters import DeadLetterPublisher

__all__ = ["RedactingDeadLetterPublisher"]


class RedactingDeadLetterPublisher(DeadLetterPublisher):
    """A ``DeadLetterPublisher`` whose letters carry a redacted key as well."""

    def publish(self, invalid: Sequence[InvalidRecord], raws: Sequence[RawMessage], token: str) -> None:
        if self.redactor is not None:
            raws = [raw._replace(key=self.redactor.key(raw.key)) if raw.key else raw for raw in raws]
        super().publish(invalid, raws, token)
