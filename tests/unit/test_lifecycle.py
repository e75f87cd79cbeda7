"""Experiment lifecycle: commands, the fold, refusals, correlation by instant, and the event wire format."""

from __future__ import annotations

import re
import uuid
from datetime import datetime, timedelta, timezone

import msgspec
import pytest

from hub.errors import InvalidRecord, UserError
from hub.experiments import lifecycle as lc
from hub.experiments.definition import definition_to_dict, load_definition
from hub.experiments.events import (
    EVENT_COLUMNS,
    KINDS,
    BadEvent,
    ExperimentCompleted,
    ExperimentCreated,
    ExperimentStarted,
    FaultInjected,
    NoteAdded,
    PhaseChanged,
    decode_event,
    encode_event,
    event_row,
)
from hub.experiments.lifecycle import InvalidCommand, InvalidTransition, apply, fold
from hub.experiments.projection import PROJECTION_COLUMNS
from hub.settings import REPO_ROOT
from tests.migrated_columns import assert_columns_stored

UTC = timezone.utc
T0 = datetime(2024, 5, 1, 9, 0, tzinfo=UTC)
EXAMPLE = REPO_ROOT / "examples" / "experiments" / "patient-api-db-failover.yaml"
EXP = "patient-api-db-failover"


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


class Timeline:
    """Applies helper-made events as a writer would: publish (here: append), then fold in."""

    def __init__(self):
        self.events: list = []
        self.state: lc.ExperimentState | None = None

    def do(self, result):
        for event in result if isinstance(result, list) else [result]:
            self.state = apply(self.state, event)
            self.events.append(event)
        return result


@pytest.fixture(scope="module")
def definition():
    return load_definition(EXAMPLE)


def all_done(state):
    return [{"item": p.item, "done": True} for p in state.prerequisites]


@pytest.fixture
def created(definition):
    tl = Timeline()
    tl.do(lc.create(definition, "amara", at(0)))
    return tl


@pytest.fixture
def ready(created):
    created.do(lc.check_prerequisites(created.state, all_done(created.state), "amara", at(1)))
    return created


@pytest.fixture
def running(ready):
    ready.do(lc.start(ready.state, "amara", at(2)))
    return ready


@pytest.fixture
def injected(running):
    running.do(lc.change_phase(running.state, "injection", "amara", at(12)))
    running.do(lc.inject_fault(running.state, "stop-instance", "patients-db-primary", "jonas", at(13),
                               parameters={"zone": "a", "graceful": False}, injector="aws-fis", fault_id="f1"))
    return running


@pytest.fixture
def completed(injected):
    injected.do(lc.remove_fault(injected.state, "f1", "jonas", at(20)))
    injected.do(lc.complete(injected.state, "amara", at(50), "failover took 41 s"))
    return injected


@pytest.fixture
def aborted(running):
    running.do(lc.abort(running.state, "error rate above 10% for 1m", "abort-condition:api-failing", at(5)))
    return running


# ---- the happy path ---------------------------------------------------------------------------
def test_happy_path(definition):
    tl = Timeline()
    created = tl.do(lc.create(definition, "amara", at(0)))
    assert isinstance(created, ExperimentCreated) and created.sequence == 1 and created.experiment_id == EXP
    s = tl.state
    assert (s.status, s.version, s.created_by, s.title) == ("draft", 1, "amara", definition.title)
    assert s.definition == definition
    assert [p.done for p in s.prerequisites] == [p.done for p in definition.prerequisites]

    # Two people tick off their own items; the experiment is ready once all are done.
    tl.do(lc.check_prerequisites(tl.state, [{"item": definition.prerequisites[3].item, "done": True,
                                             "note": "restored at 08:40"}], "priya", at(0.5)))
    assert tl.state.status == "draft"
    tl.do(lc.check_prerequisites(tl.state, [{"item": definition.prerequisites[4].item, "done": True}], "hannah", at(1)))
    assert tl.state.status == "ready" and tl.state.prerequisites_checked_by == "hannah"
    assert tl.state.prerequisites[3].note == "restored at 08:40"

    started = tl.do(lc.start(tl.state, "amara", at(2)))
    assert [type(e) for e in started] == [ExperimentStarted, PhaseChanged]
    assert [e.sequence for e in started] == [4, 5] and started[1].phase == "baseline"
    assert started[0].time == started[1].time and not started[0].forced
    assert (tl.state.status, tl.state.phase, tl.state.started_at) == ("running", "baseline", at(2))

    tl.do(lc.change_phase(tl.state, "injection", "amara", at(12)))
    fault = tl.do(lc.inject_fault(tl.state, "stop-instance", "patients-db-primary", "jonas", at(13),
                                  parameters={"zone": "a", "timeout_s": 30, "graceful": False}, injector="aws-fis"))
    assert fault.fault_id.startswith("fault-") and fault.injector == "aws-fis"
    assert list(tl.state.faults) == [fault.fault_id] and tl.state.faults[fault.fault_id].phase == "injection"
    tl.do(lc.add_note(tl.state, "pool reconnects took 45 s", "priya", at(14), note_kind="surprise",
                      expected="reconnect within 30 s", actual="45 s", tags=["db-client"]))
    tl.do(lc.change_phase(tl.state, "observation", "amara", at(17)))
    tl.do(lc.remove_fault(tl.state, fault.fault_id, "jonas", at(20)))
    tl.do(lc.change_phase(tl.state, "recovery", "amara", at(32)))
    done = tl.do(lc.complete(tl.state, "amara", at(42), summary="failover in 41 s; client pool too slow"))
    assert isinstance(done, ExperimentCompleted) and not done.forced

    s = tl.state
    assert (s.status, s.phase, s.ended_at, s.version) == ("completed", "", at(42), 12)
    assert s.summary.startswith("failover in 41 s")
    assert [(p.phase, p.start, p.end) for p in s.phase_history] == [
        ("baseline", at(2), at(12)), ("injection", at(12), at(17)),
        ("observation", at(17), at(32)), ("recovery", at(32), at(42))]
    assert s.faults == {} and [(f.start, f.end, f.removed_by) for f in s.fault_history] == [(at(13), at(20), "jonas")]
    assert s.notes[0].phase == "injection" and s.notes[0].note_kind == "surprise"
    assert list(s.event_ids) == [e.event_id for e in tl.events]

    # Learning continues after the end.
    tl.do(lc.add_note(s, "retro: raise the pool's refresh rate", "lucas", at(24 * 60)))
    assert tl.state.notes[-1].phase == "" and tl.state.status == "completed"

    # The state is a fold: over the events, and over the events as read back from the wire.
    assert fold(tl.events) == {EXP: tl.state}
    assert fold(decode_event(encode_event(e)) for e in tl.events) == {EXP: tl.state}


def test_create_derives_an_id_when_the_file_has_none(definition):
    defn = msgspec.structs.replace(definition, id=None)
    e1, e2 = lc.create(defn, "amara", at(0)), lc.create(defn, "amara", at(0))
    assert e1.experiment_id != e2.experiment_id
    assert re.fullmatch(r"patient-records-api-survives-.*-[0-9a-f]{6}", e1.experiment_id)
    assert e1.definition["id"] == e1.experiment_id
    assert apply(None, e1).definition.id == e1.experiment_id


def test_start_from_draft_needs_force_and_says_what_is_missing(created, definition):
    with pytest.raises(InvalidTransition) as info:
        lc.start(created.state, "amara", at(2))
    message = str(info.value)
    assert message.startswith(f"cannot start experiment {EXP}: it is draft; prerequisites not done: ")
    assert definition.prerequisites[3].item in message and definition.prerequisites[4].item in message
    assert "or start with force" in message and (info.value.experiment_id, info.value.status) == (EXP, "draft")
    started, first = created.do(lc.start(created.state, "amara", at(2), force=True))
    assert started.forced and created.state.forced_start and created.state.phase == "baseline"


def test_start_needs_a_check_even_when_the_file_says_done(definition):
    defn = msgspec.structs.replace(definition, prerequisites=[])
    tl = Timeline()
    tl.do(lc.create(defn, "amara", at(0)))
    with pytest.raises(InvalidTransition, match="prerequisites have not been checked yet"):
        lc.start(tl.state, "amara", at(1))
    tl.do(lc.check_prerequisites(tl.state, [], "amara", at(1)))
    assert tl.state.status == "ready"


def test_a_failed_check_puts_a_ready_experiment_back_to_draft(ready, definition):
    ready.do(lc.check_prerequisites(ready.state, [{"item": definition.prerequisites[0].item, "done": False,
                                                   "note": "telemetry exporter crashed"}], "priya", at(1.5)))
    assert ready.state.status == "draft"


def test_complete_with_active_faults_needs_force(injected):
    with pytest.raises(InvalidTransition) as info:
        lc.complete(injected.state, "amara", at(30))
    assert str(info.value) == (f"cannot complete experiment {EXP}: it is running; faults still active: "
                               "f1 (stop-instance on patients-db-primary); remove them first, or complete with force")
    injected.do(lc.complete(injected.state, "amara", at(30), force=True))
    assert injected.state.status == "completed" and injected.state.forced_completion
    assert list(injected.state.faults) == ["f1"]  # nothing removed implicitly
    injected.do(lc.remove_fault(injected.state, "f1", "jonas", at(31)))  # clean-up after the end
    assert injected.state.faults == {} and injected.state.fault_history[0].end == at(31)


def test_abort_keeps_faults_until_removed(injected):
    injected.do(lc.abort(injected.state, "p99 above 5 s", "abort-condition:api-very-slow", at(14), actor="hub"))
    s = injected.state
    assert (s.status, s.abort_reason, s.aborted_by, s.ended_at, s.phase) == (
        "aborted", "p99 above 5 s", "abort-condition:api-very-slow", at(14), "")
    assert injected.events[-1].actor == "hub" and list(s.faults) == ["f1"]
    assert s.phase_history[-1].end == at(14)
    injected.do(lc.remove_fault(s, "f1", "jonas", at(15)))


def test_abort_before_start(ready):
    ready.do(lc.abort(ready.state, "database team unavailable", "amara", at(1.5)))
    assert ready.state.status == "aborted" and ready.state.started_at is None and ready.state.phase_history == ()


# ---- refusals ---------------------------------------------------------------------------------
REFUSED = [
    # (stage, command, text in the message)
    ("created", lambda s: lc.change_phase(s, "injection", "a", at(9)), "cannot change the phase of experiment {id}: it is draft; phases change only while running"),
    ("created", lambda s: lc.inject_fault(s, "stop", "db", "a", at(9)), "cannot inject a fault into experiment {id}: it is draft; faults are injected only while running"),
    ("created", lambda s: lc.abort(s, "x", "a", at(9)), "cannot abort experiment {id}: it is draft; only a ready or running experiment can be aborted"),
    ("created", lambda s: lc.complete(s, "a", at(9)), "cannot complete experiment {id}: it is draft; only a running experiment can be completed"),
    ("created", lambda s: lc.check_prerequisites(s, [{"item": "coffee", "done": True}], "a", at(9)), "cannot check the prerequisites of experiment {id}: it is draft; unknown prerequisite 'coffee' (defined: "),
    ("created", lambda s: lc.check_prerequisites(s, [{"item": s.prerequisites[0].item, "done": True}] * 2, "a", at(9)), "is listed twice"),
    ("ready", lambda s: lc.inject_fault(s, "stop", "db", "a", at(9)), "cannot inject a fault into experiment {id}: it is ready"),
    ("ready", lambda s: lc.change_phase(s, "baseline", "a", at(9)), "it is ready; phases change only while running"),
    ("ready", lambda s: lc.complete(s, "a", at(9)), "it is ready; only a running experiment can be completed"),
    ("running", lambda s: lc.start(s, "a", at(9)), "cannot start experiment {id}: it is running; an experiment starts once"),
    ("running", lambda s: lc.start(s, "a", at(9), force=True), "cannot start experiment {id}: it is running"),
    ("running", lambda s: lc.check_prerequisites(s, [], "a", at(9)), "it is running; prerequisites are checked before the start"),
    ("running", lambda s: lc.change_phase(s, "baseline", "a", at(9)), "it is running; it is already in phase 'baseline'"),
    ("running", lambda s: lc.change_phase(s, "chaos", "a", at(9)), "phase 'chaos' is not defined (defined: baseline, injection, observation, recovery)"),
    ("running", lambda s: lc.remove_fault(s, "f9", "a", at(9)), "cannot remove a fault from experiment {id}: it is running; fault 'f9' is not active; active faults: none"),
    ("injected", lambda s: lc.inject_fault(s, "stop", "db", "a", at(19), fault_id="f1"), "fault id 'f1' is already used in this experiment"),
    ("completed", lambda s: lc.complete(s, "a", at(60)), "cannot complete experiment {id}: it is completed"),
    ("completed", lambda s: lc.change_phase(s, "recovery", "a", at(60)), "cannot change the phase of experiment {id}: it is completed"),
    ("completed", lambda s: lc.abort(s, "late", "a", at(60)), "it is completed; only a ready or running experiment can be aborted"),
    ("completed", lambda s: lc.start(s, "a", at(60), force=True), "cannot start experiment {id}: it is completed"),
    ("completed", lambda s: lc.inject_fault(s, "stop", "db", "a", at(60)), "it is completed; faults are injected only while running"),
    ("completed", lambda s: lc.remove_fault(s, "f1", "a", at(60)), "fault 'f1' is not active (it was removed already)"),
    ("aborted", lambda s: lc.abort(s, "again", "a", at(60)), "cannot abort experiment {id}: it is aborted"),
    ("aborted", lambda s: lc.complete(s, "a", at(60)), "cannot complete experiment {id}: it is aborted"),
    ("aborted", lambda s: lc.check_prerequisites(s, [], "a", at(60)), "it is aborted; prerequisites are checked before the start"),
]


@pytest.mark.parametrize("stage,command,expected", REFUSED, ids=[f"{r[0]}-{i}" for i, r in enumerate(REFUSED)])
def test_invalid_transitions_are_refused(request, stage, command, expected):
    tl = request.getfixturevalue(stage)
    before = tl.state
    with pytest.raises(InvalidTransition) as info:
        command(tl.state)
    assert expected.format(id=EXP) in str(info.value)
    assert isinstance(info.value, UserError) and info.value.experiment_id == EXP
    assert tl.state is before and fold(tl.events) == {EXP: before}


@pytest.mark.parametrize("command,expected", [
    (lambda s: lc.add_note(s, "", "a", at(9)), "note_added: text: must not be empty"),
    (lambda s: lc.add_note(s, "x", "", at(9)), "note_added: actor: must not be empty"),
    (lambda s: lc.add_note(s, "x", "a", at(9), note_kind="idea"), "note_added: note_kind: invalid enum value 'idea'"),
    (lambda s: lc.abort(s, "", "a", at(9)), "experiment_aborted: reason: must not be empty"),
    (lambda s: lc.inject_fault(s, "", "db", "a", at(9)), "fault_injected: action: must not be empty"),
    (lambda s: lc.inject_fault(s, "add-latency", "db", "a", at(9), parameters={"ms": float("inf")}), "parameters.ms: expected a finite number"),
    (lambda s: lc.inject_fault(s, "add-latency", "db", "a", at(9), parameters={"ms": [1]}), "fault_injected: parameters[...]: expected `bool | int | float | str`, got `array`"),
    (lambda s: lc.change_phase(s, "injection", "a", datetime(2024, 5, 1, 9, 30)), "must be a timezone-aware datetime"),
])
def test_bad_arguments_are_refused(running, command, expected):
    with pytest.raises(InvalidCommand, match=re.escape(expected)):
        command(running.state)


# ---- apply: the log's own rules ----------------------------------------------------------------
def _note(state, sequence=None, experiment_id=None, event_id=None, time=None):
    event = lc.add_note(state, "x", "a", at(30))
    return msgspec.structs.replace(event, sequence=sequence or event.sequence,
                                   experiment_id=experiment_id or event.experiment_id,
                                   event_id=event_id or event.event_id, time=time or event.time)


def test_apply_refuses_gaps_taken_sequences_and_other_experiments(running):
    s = running.state
    with pytest.raises(InvalidTransition, match=rf"at version {s.version} and expects sequence {s.version + 1}: events {s.version + 1} to {s.version + 2} are missing"):
        apply(s, _note(s, sequence=s.version + 3))
    with pytest.raises(InvalidTransition, match=r"sequence 2 is already taken by event .* re-read the experiment and retry"):
        apply(s, _note(s, sequence=2))
    with pytest.raises(InvalidTransition, match=rf"belongs to experiment other-exp, not to {EXP}"):
        apply(s, _note(s, experiment_id="other-exp"))
    with pytest.raises(InvalidTransition, match="is earlier than the previous event"):
        apply(s, _note(s, time=at(1)))


def test_a_redelivered_event_changes_nothing(running):
    s = running.state
    assert apply(s, running.events[1]) is s
    assert fold(running.events + running.events) == {EXP: s}


def test_apply_refuses_a_timeline_that_does_not_begin_with_creation(running):
    with pytest.raises(InvalidTransition, match=f"experiment {EXP} does not exist: its timeline must begin with experiment_created, got prerequisites_checked"):
        apply(None, running.events[1])
    with pytest.raises(InvalidTransition, match=f"experiment {EXP} already exists"):
        apply(running.state, msgspec.structs.replace(running.events[0], sequence=running.state.version + 1,
                                                     event_id=str(uuid.uuid4()), time=at(30)))
    with pytest.raises(InvalidTransition, match="experiment_created must have sequence 1, got 2"):
        apply(None, msgspec.structs.replace(running.events[0], sequence=2))


def test_apply_refuses_an_unusable_stored_definition(definition):
    event = lc.create(definition, "amara", at(0))
    bad = dict(event.definition, environment={"name": "p", "kind": "production", "risk": "high"})
    with pytest.raises(InvalidTransition, match=f"experiment {EXP} definition: environment.approver: required"):
        apply(None, msgspec.structs.replace(event, definition=bad))
    with pytest.raises(InvalidTransition, match="the definition's id is 'other-id'"):
        apply(None, msgspec.structs.replace(event, definition=dict(event.definition, id="other-id")))


def test_apply_refuses_a_start_that_is_neither_ready_nor_forced(created):
    s = created.state
    unforced = ExperimentStarted(experiment_id=EXP, event_id=str(uuid.uuid4()), actor="a", time=at(5),
                                 sequence=s.version + 1)
    with pytest.raises(InvalidTransition, match="prerequisites not done"):
        apply(s, unforced)


def test_apply_refuses_a_completion_with_active_faults_unless_forced(injected):
    s = injected.state
    unforced = ExperimentCompleted(experiment_id=EXP, event_id=str(uuid.uuid4()), actor="a", time=at(30),
                                   sequence=s.version + 1)
    with pytest.raises(InvalidTransition, match="faults still active: f1"):
        apply(s, unforced)


def test_fold_can_skip_invalid_events_and_report_them(running, definition):
    other = lc.create(msgspec.structs.replace(definition, id="second-exp"), "bo", at(0))
    stray = _note(running.state, sequence=running.state.version + 5)
    seen = []
    states = fold(running.events + [stray, other], on_invalid=lambda e, exc: seen.append((e, str(exc))))
    assert set(states) == {EXP, "second-exp"} and states[EXP] == running.state
    assert seen[0][0] is stray and "are missing" in seen[0][1]
    with pytest.raises(InvalidTransition):
        fold(running.events + [stray])


def test_helpers_stamp_milliseconds_and_never_go_back_in_time(running):
    s = running.state
    note = lc.add_note(s, "clock behind", "a", s.updated_at - timedelta(seconds=5))
    assert note.time == s.updated_at
    note = lc.add_note(s, "x", "a", datetime(2024, 5, 1, 11, 30, 0, 123456, tzinfo=timezone(timedelta(hours=2))))
    assert note.time == datetime(2024, 5, 1, 9, 30, 0, 123000, tzinfo=UTC) and note.time.tzinfo is UTC


def test_helpers_do_not_change_the_state(running):
    before = msgspec.json.encode(running.state)
    lc.add_note(running.state, "x", "a", at(5))
    lc.inject_fault(running.state, "stop", "db", "a", at(5))
    lc.change_phase(running.state, "injection", "a", at(5))
    assert msgspec.json.encode(running.state) == before


# ---- correlation by instant --------------------------------------------------------------------
def test_phase_at_uses_half_open_intervals(completed):
    s = completed.state
    assert lc.phase_at(s, at(1.99)) == ""          # before the start
    assert lc.phase_at(s, at(2)) == "baseline"      # the first phase begins at start
    assert lc.phase_at(s, at(12) - timedelta(milliseconds=1)) == "baseline"
    assert lc.phase_at(s, at(12)) == "injection"    # [start, end)
    assert lc.phase_at(s, at(49.99)) == "injection"
    assert lc.phase_at(s, at(50)) == ""             # completion closes the phase
    assert lc.phase_at(s, at(12).astimezone(timezone(timedelta(hours=-5)))) == "injection"


def test_active_faults_at_uses_half_open_intervals(completed, running):
    s = completed.state
    assert lc.active_faults_at(s, at(12.99)) == []
    assert [f.fault_id for f in lc.active_faults_at(s, at(13))] == ["f1"]
    assert [f.fault_id for f in lc.active_faults_at(s, at(19.99))] == ["f1"]
    assert lc.active_faults_at(s, at(20)) == []
    assert lc.active_faults_at(s, at(13))[0].parameters == {"zone": "a", "graceful": False}


def test_a_fault_never_removed_stays_in_force(injected):
    injected.do(lc.abort(injected.state, "stop", "amara", at(14)))
    assert [f.fault_id for f in lc.active_faults_at(injected.state, at(24 * 60))] == ["f1"]
    assert lc.phase_at(injected.state, at(24 * 60)) == ""


# ---- wire format and table rows ----------------------------------------------------------------
def test_every_kind_round_trips(completed):
    completed.do(lc.add_note(completed.state, "late", "a", at(60), note_kind="surprise", tags=["x"]))
    kinds = {e.__struct_config__.tag for e in completed.events}
    assert kinds >= set(KINDS) - {"experiment_aborted"}
    for event in completed.events + [lc.abort(msgspec.structs.replace(completed.state, status="running"), "r", "b", at(61))]:
        data = encode_event(event)
        assert decode_event(data) == event
        assert decode_event(data.decode()) == event
        assert msgspec.json.decode(data)["kind"] == event.__struct_config__.tag


@pytest.mark.parametrize("value,reason", [
    (b"", "empty value"),
    (b"{nope", "not JSON: "),
    (b'{"kind": "experiment_deleted"}', "unknown kind: 'experiment_deleted' (expected one of experiment_created, "),
    (b'{"kind": "phase_changed"}', "schema: Object missing required field `experiment_id`"),
    (b'[1]', "schema: "),
])
def test_decode_reasons(value, reason):
    with pytest.raises(BadEvent) as info:
        decode_event(value)
    assert info.value.reason.startswith(reason)
    assert isinstance(info.value, ValueError)
    assert InvalidRecord(info.value.reason, "hub.experiments", 0, 7).reason == info.value.reason


@pytest.mark.parametrize("field,value,problem", [
    ("sequence", 0, "Expected `int` >= 1 - at `$.sequence`"),
    ("event_id", "not-a-uuid", "at `$.event_id`"),
    ("time", "2024-05-01T09:00:00", "at `$.time`"),
    ("actor", "", "at `$.actor`"),
    ("phase", "", "at `$.phase`"),
    ("extra", 1, "unknown field `extra`"),
])
def test_decode_checks_every_field(running, field, value, problem):
    data = msgspec.json.decode(encode_event(running.events[-1]))
    data[field] = value
    with pytest.raises(BadEvent, match=re.escape(problem)):
        decode_event(msgspec.json.encode(data))


def test_event_rows(injected):
    rows = [dict(zip(EVENT_COLUMNS, event_row(e))) for e in injected.events]
    assert [r["sequence"] for r in rows] == list(range(1, len(rows) + 1))
    assert [r["kind"] for r in rows][:4] == ["experiment_created", "prerequisites_checked", "experiment_started", "phase_changed"]
    assert [r["phase"] for r in rows] == ["", "", "", "baseline", "injection", ""]
    for row, event in zip(rows, injected.events):
        assert row["experiment_id"] == EXP and row["event_id"] == uuid.UUID(event.event_id)
        assert row["time"] == event.time and row["time"].tzinfo is UTC and row["actor"] == event.actor
        assert decode_event(row["payload"]) == event  # the table alone can rebuild the timeline
    assert fold(decode_event(r["payload"]) for r in rows) == {EXP: injected.state}


@pytest.mark.clickhouse
def test_columns_match_the_clickhouse_migration(store):
    # the columns the sink writes, against the table as every migration leaves it
    assert_columns_stored(store, "experiment_events", PROJECTION_COLUMNS)
    assert PROJECTION_COLUMNS[:len(EVENT_COLUMNS)] == EVENT_COLUMNS
    sql = (REPO_ROOT / "schemas" / "clickhouse" / "0004_experiment_events.sql").read_text()
    assert "{db}.experiment_events" in sql and "ORDER BY (experiment_id, sequence)" in sql
    assert "non_replicated_deduplication_window = 10000" in sql
    assert "{ttl_clause}" not in sql  # the experiment log is never deleted
    assert "DateTime64(3, 'UTC')" in sql  # the helpers stamp milliseconds, so rows fold to the same state


def test_the_stored_definition_is_the_plain_form(definition):
    event = lc.create(definition, "amara", at(0))
    assert event.definition == definition_to_dict(definition)
    assert isinstance(NoteAdded.__struct_config__.tag, str) and FaultInjected.__struct_config__.tag == "fault_injected"


def test_a_stated_time_is_recorded_as_given_and_refused_in_the_future_or_before_the_last_event(running):
    state = running.state  # last event: the first phase at 2 min
    now = at(30)
    # a fault put in place at 29 min, recorded at 30 min, keeps its time
    event = running.do(lc.inject_fault(state, "add-latency", "db", "jonas", lc.stated_time(state, at(29), now),
                                       fault_id="f9"))
    assert event.time == at(29) and running.state.faults["f9"].start == at(29)
    assert lc.stated_time(running.state, None, now) == now
    # within two seconds of clock skew ahead: kept; further ahead: refused, never moved
    assert lc.stated_time(running.state, now + timedelta(seconds=1), now) == now + timedelta(seconds=1)
    with pytest.raises(InvalidCommand, match="in the future"):
        lc.stated_time(running.state, now + timedelta(seconds=5), now)
    # before the experiment's last event (29 min): refused, not moved to it
    with pytest.raises(InvalidCommand, match="before experiment .* last event"):
        lc.stated_time(running.state, at(28), now)
    with pytest.raises(InvalidCommand, match="timezone-aware"):
        lc.stated_time(running.state, datetime(2024, 5, 1, 9, 29), now)


def test_the_cli_reads_at_as_iso_or_time_ago():
    from hub.cli.experiment import stated_at

    current = datetime(2026, 12, 7, 14, 5, tzinfo=UTC)
    assert stated_at(None, current) is None
    assert stated_at("-30s", current) == current - timedelta(seconds=30)
    assert stated_at("-1.5m", current) == current - timedelta(seconds=90)
    assert stated_at("2026-12-07T14:03:05Z", current) == datetime(2026, 12, 7, 14, 3, 5, tzinfo=UTC)
    assert stated_at("2026-12-07T15:03:05+01:00", current) == datetime(2026, 12, 7, 14, 3, 5, tzinfo=UTC)
    assert stated_at("2026-12-07 14:03:05", current) == datetime(2026, 12, 7, 14, 3, 5, tzinfo=UTC)
    with pytest.raises(UserError, match="--at expects"):
        stated_at("yesterday", current)
