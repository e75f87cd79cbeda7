"""The experiment sink's decoder: every event with the lifecycle fold's verdict, the same whatever
chunk it arrives in, the same as the registry's; unsafe records are dead letters."""

from __future__ import annotations

import random
import uuid
from datetime import datetime, timedelta, timezone

import msgspec
import pytest

from hub.experiments import lifecycle as lc
from hub.experiments.definition import load_definition
from hub.experiments.events import (
    MAX_DEPTH,
    ExperimentAborted,
    ExperimentCompleted,
    decode_event,
    encode_event,
    nesting_depth,
)
from hub.experiments.projection import PROJECTION_COLUMNS, ExperimentProjection
from hub.experiments.registry import ExperimentRegistry
from hub.records.decode import RawMessage
from hub.settings import REPO_ROOT

UTC = timezone.utc
T0 = datetime(2024, 5, 1, 9, 0, tzinfo=UTC)
EXAMPLE = REPO_ROOT / "examples" / "experiments" / "patient-api-db-failover.yaml"
EXP = "patient-api-db-failover"
TOPIC = "hub.experiments"
ACCEPTED = PROJECTION_COLUMNS.index("accepted")
KIND = PROJECTION_COLUMNS.index("kind")
PAYLOAD = PROJECTION_COLUMNS.index("payload")
REFUSAL = PROJECTION_COLUMNS.index("refusal")
OFFSET = PROJECTION_COLUMNS.index("source_offset")


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def message(offset: int, value: bytes, key: bytes | None = EXP.encode(), partition: int = 0) -> RawMessage:
    return RawMessage(TOPIC, partition, offset, key, value, 0)


def log_of(values: list[bytes], keys: list[bytes | None] | None = None) -> list[RawMessage]:
    keys = keys or [EXP.encode()] * len(values)
    return [message(i, v, k) for i, (v, k) in enumerate(zip(values, keys))]


def history_of(log: list[RawMessage]):
    def history(topic, partition, end):
        return [m for m in log if m.partition == partition and m.offset < end]
    return history


@pytest.fixture(scope="module")
def definition():
    return load_definition(EXAMPLE)


def forged_ends(sequence: int, minutes: float) -> list[bytes]:
    common = dict(experiment_id=EXP, actor="mallory", time=at(minutes), sequence=sequence)
    return [encode_event(ExperimentCompleted(event_id=str(uuid.uuid4()), **common)),
            encode_event(ExperimentAborted(event_id=str(uuid.uuid4()), reason="forged", by="mallory", **common))]


def draft_with_forgeries(definition) -> list[bytes]:
    created = lc.create(definition, "ana", at(0))
    state = lc.apply(None, created)
    note = lc.add_note(state, "still a draft", "ana", at(2))
    return [encode_event(created), *forged_ends(2, 1), encode_event(note)]


def test_forged_ends_of_a_draft_are_refused_with_the_folds_reason(definition):
    log = log_of(draft_with_forgeries(definition))
    batch = ExperimentProjection(history_of(log), 1_000_000).decode(log)
    assert not batch.invalid
    assert [(r[KIND], r[ACCEPTED]) for r in batch.rows] == [
        ("experiment_created", 1), ("experiment_completed", 0), ("experiment_aborted", 0), ("note_added", 1)]
    assert "cannot complete experiment" in batch.rows[1][REFUSAL] and "it is draft" in batch.rows[1][REFUSAL]
    assert "cannot abort experiment" in batch.rows[2][REFUSAL]
    assert [r[OFFSET] for r in batch.rows] == [0, 1, 2, 3]


def test_verdicts_do_not_depend_on_how_the_log_is_cut_into_chunks(definition):
    log = log_of(draft_with_forgeries(definition))
    whole = ExperimentProjection(history_of(log), 1_000_000).decode(log).rows
    for cut in range(1, len(log)):
        # A fresh projection (a restarted worker, a replay) that starts in the middle re-derives the state.
        fresh = ExperimentProjection(history_of(log), 1_000_000)
        assert fresh.decode(log[cut:]).rows == whole[cut:]
        # One projection fed chunk after chunk, and the same chunk decoded twice (a retried batch).
        chunked = ExperimentProjection(history_of(log), 1_000_000)
        first = chunked.decode(log[:cut]).rows
        assert chunked.decode(log[:cut]).rows == first
        assert first + chunked.decode(log[cut:]).rows == whole


def test_a_redelivered_event_and_a_wrongly_keyed_one_are_not_shown_twice(definition):
    created = encode_event(lc.create(definition, "ana", at(0)))
    other = encode_event(lc.create(msgspec.structs.replace(definition, id="other"), "ana", at(0)))
    log = log_of([created, created, other], keys=[EXP.encode(), EXP.encode(), EXP.encode()])
    rows = ExperimentProjection(history_of(log), 1_000_000).decode(log).rows
    assert [r[ACCEPTED] for r in rows] == [1, 0, 0]
    assert rows[1][REFUSAL].startswith("duplicate:")
    assert rows[2][REFUSAL].startswith("wrong key:")


def test_the_projection_accepts_exactly_what_the_registry_applies(definition):
    """Random timelines with forged, repeated and out-of-order events: the accepted rows fold to the
    registry's states, and the registry skips exactly the refused ones."""
    rng = random.Random(7)
    for _ in range(30):
        timeline = []
        state = None
        created = lc.create(definition, "ana", at(0))
        state = lc.apply(state, created)
        timeline.append(created)
        state = lc.apply(state, e := lc.check_prerequisites(state, [{"item": p.item, "done": True}
                                                                   for p in definition.prerequisites], "ana", at(1)))
        timeline.append(e)
        for e in lc.start(state, "ana", at(2)):
            state = lc.apply(state, e)
            timeline.append(e)
        state = lc.apply(state, e := lc.add_note(state, "n", "ana", at(3)))
        timeline.append(e)
        state = lc.apply(state, e := lc.complete(state, "ana", at(4), force=True))
        timeline.append(e)
        values = [encode_event(e) for e in timeline]
        for _ in range(rng.randint(1, 6)):  # forgeries, repeats, reordering
            choice = rng.random()
            i = rng.randrange(len(values) + 1)
            if choice < 0.4:
                values.insert(i, rng.choice(forged_ends(rng.randint(1, 7), rng.uniform(0, 5))))
            elif choice < 0.7:
                values.insert(i, rng.choice(values))
            elif len(values) > 1:
                j = rng.randrange(len(values))
                values[i - 1], values[j] = values[j], values[i - 1]
        log = log_of(values)
        rows = ExperimentProjection(history_of(log), 1_000_000).decode(log).rows
        registry = ExperimentRegistry("unused:9092", TOPIC)
        for v in values:
            registry.apply_value(v)
        accepted = [decode_event(r[PAYLOAD]) for r in rows if r[ACCEPTED]]
        assert lc.fold(accepted) == registry.states
        duplicates = sum(1 for r in rows if r[REFUSAL].startswith("duplicate:"))
        assert registry.skipped == len(rows) - len(accepted) - duplicates


@pytest.mark.parametrize("value, reason", [
    (b"", "empty value"),
    (b"{\"kind\": \"note_added\", \"x\": " + b"[" * 50_000 + b"]" * 50_000 + b"}", "too deeply nested:"),
    (b"{\"kind\": \"note_added\", \"sequence\": \"two\"}", "schema:"),
    (b"{\"kind\": \"experiment_created\", \"experiment_id\": \"x\", \"event_id\": "
     b"\"00000000-0000-0000-0000-000000000001\", \"actor\": \"a\", \"time\": \"2300-01-01T00:00:00Z\", "
     b"\"sequence\": 1, \"definition\": {}}", "timestamp out of range:"),
    (b"x" * 150_001, "oversized:"),
])
def test_unsafe_experiment_events_are_dead_letters_with_a_reason(value, reason):
    log = [message(0, value)]
    batch = ExperimentProjection(history_of(log), 150_000).decode(log)
    assert batch.rows == []
    assert [i.reason.split(":")[0] + ":" for i in batch.invalid] == [reason if reason.endswith(":") else reason + ":"]


def test_nesting_depth_counts_brackets_outside_strings_only():
    assert nesting_depth(b'{"a": "[[[[[[", "b": [[1]]}', limit=5) == 3
    assert nesting_depth(b'{"a": "\\"[[[[[["}', limit=1) == 1
    assert nesting_depth(b"[" * (MAX_DEPTH + 1) + b"]" * (MAX_DEPTH + 1)) == MAX_DEPTH + 1
    assert nesting_depth(b"[" * 1_000_000) == MAX_DEPTH + 1  # stops counting past the limit
