"""Every dead letter names what it is of (source topic, partition, offset, index), the key on which a
consumer of the at-least-once dead-letter topic de-duplicates; the README says so."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

from hub.errors import InvalidRecord
from hub.records.decode import RawMessage, decode_dead_letter, dead_letter_identity, to_dead_letter

UTC = timezone.utc
FIELDS = ("source_topic", "source_partition", "source_offset", "source_index")


def test_every_dead_letter_carries_its_source_coordinates_and_a_redelivery_has_the_same_identity():
    raw = RawMessage("hub.requests", 3, 41, b"k", b'[{"a":1},{"b":2}]', 1_700_000_000_000)
    letters = [to_dead_letter(InvalidRecord("schema: x", raw.topic, raw.partition, raw.offset, index=index), raw,
                              dead_time=datetime(2026, 1, day, tzinfo=UTC))
               for index, day in ((-1, 1), (1, 2), (1, 3))]
    for value in letters:
        doc = json.loads(value)
        assert all(doc.get(name) is not None for name in FIELDS)
    identities = [dead_letter_identity(decode_dead_letter(v)) for v in letters]
    assert identities == [("hub.requests", 3, 41, -1), ("hub.requests", 3, 41, 1), ("hub.requests", 3, 41, 1)]
    assert letters[1] != letters[2]  # published twice (another dead_time), one identity
    assert len(set(identities)) == 2


def test_the_readme_says_the_dead_letter_topic_is_at_least_once_and_how_to_de_duplicate():
    text = " ".join((Path(__file__).parents[2] / "README.md").read_text().split())
    assert "at-least-once" in text
    assert "(source_topic, source_partition, source_offset, source_index)" in text
