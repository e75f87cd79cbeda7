"""Property: folding any valid event sequence gives the same state as replaying it, and any
invalid transition is refused.

A hypothesis state machine issues random commands on two interleaved experiments through the
command helpers. A small model written independently of ``hub.experiments.lifecycle`` says which
commands are valid; valid ones must give events, invalid ones must raise ``InvalidTransition``
and add nothing. After every step the accepted events, folded from scratch, from the wire and
prefix by prefix, must give the states maintained one event at a time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import msgspec
import pytest
from hypothesis import HealthCheck, assume, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from hub.experiments import lifecycle as lc
from hub.experiments.definition import definition_from_dict
from hub.experiments.events import decode_event, encode_event
from hub.experiments.lifecycle import InvalidTransition, apply, fold

BASE = {
    "title": "t", "scenario": "s", "hypothesis": "h", "expected_outcome": "o",
    "steady_state": [{"name": "errors", "sli": "error_rate", "source": "requests", "tolerance": {"max": 0.01}}],
    "environment": {"name": "staging", "kind": "non-live", "risk": "low"},
    "targets": {"services": ["patient-api"]},
}
DEFINITIONS = {
    # Prerequisites to tick off, the standard phases.
    "exp-a": definition_from_dict({**BASE, "id": "exp-a", "prerequisites": [
        {"item": "telemetry", "done": True}, {"item": "runbook"}]}),
    # No prerequisites, custom phases.
    "exp-b": definition_from_dict({**BASE, "id": "exp-b", "phases": [
        {"name": "warmup", "planned_minutes": 5}, {"name": "blast", "planned_minutes": 1},
        {"name": "cool-down", "planned_minutes": 5}]}),
}
EXPERIMENTS = st.sampled_from(sorted(DEFINITIONS))
PHASES = st.sampled_from(["baseline", "injection", "observation", "recovery", "warmup", "blast", "cool-down", "chaos"])
FAULT_IDS = st.sampled_from(["f1", "f2", "f3"])
ITEMS = st.sampled_from(["telemetry", "runbook", "coffee"])  # coffee is never a prerequisite
ACTORS = st.sampled_from(["amara", "jonas", "hub"])
T0 = datetime(2024, 5, 1, 9, 0, tzinfo=timezone.utc)


@dataclass
class Model:
    """What the lifecycle should do, written from the rules rather than from the code."""

    prerequisites: dict[str, bool]
    phases: list[str]
    status: str = "draft"
    phase: str = ""
    active: set[str] = field(default_factory=set)
    used: set[str] = field(default_factory=set)


class LifecycleMachine(RuleBasedStateMachine):
    @initialize()
    def start_empty(self):
        self.events: list = []
        self.states: dict[str, lc.ExperimentState] = {}
        self.snapshots: list[dict[str, lc.ExperimentState]] = []  # states after each event
        self.models: dict[str, Model] = {}
        self.clock = T0
        # Two interleaved timelines in one log, so that the fold has to keep them apart.
        self.create("exp-a", "amara")
        self.create("exp-b", "jonas")

    # ---- helpers ----------------------------------------------------------------------------
    def now(self, skew: int = 0) -> datetime:
        # A negative skew is a writer whose clock is behind: the helpers must cope.
        return self.clock - timedelta(seconds=skew)

    def attempt(self, valid: bool, command, name: str) -> list:
        event(f"{name} {'accepted' if valid else 'refused'}")  # see --hypothesis-show-statistics
        before = list(self.events)
        if not valid:
            try:
                command()
            except InvalidTransition:
                assert self.events == before  # (d) nothing was added
                return []
            raise AssertionError(f"{name} was accepted although the model refuses it")
        result = command()
        new = result if isinstance(result, list) else [result]
        for e in new:
            self.states[e.experiment_id] = apply(self.states.get(e.experiment_id), e)
            self.events.append(e)
            self.snapshots.append(dict(self.states))
        return new

    # ---- commands ---------------------------------------------------------------------------
    @rule(seconds=st.integers(0, 900), ms=st.integers(0, 999))
    def time_passes(self, seconds, ms):
        self.clock += timedelta(seconds=seconds, milliseconds=ms)

    @rule(exp=EXPERIMENTS, actor=ACTORS)
    def create_again(self, exp, actor):
        self.create(exp, actor)

    def create(self, exp, actor):
        created = lc.create(DEFINITIONS[exp], actor, self.now())
        if exp in self.states:  # a second creation of the same id is refused by the fold
            with pytest.raises(InvalidTransition, match="already exists"):
                apply(self.states[exp], msgspec.structs.replace(created, sequence=self.states[exp].version + 1))
            with pytest.raises(InvalidTransition):
                apply(self.states[exp], created)
            return
        self.attempt(True, lambda: created, "create")
        d = DEFINITIONS[exp]
        self.models[exp] = Model({p.item: p.done for p in d.prerequisites}, [p.name for p in d.phases])

    @rule(data=st.data(), results=st.lists(st.tuples(ITEMS, st.booleans()), max_size=3), actor=ACTORS, skew=st.integers(0, 30))
    def check_prerequisites(self, data, results, actor, skew):
        exp = data.draw(st.sampled_from(sorted(self.states)))
        m = self.models[exp]
        items = [item for item, _ in results]
        valid = (m.status in ("draft", "ready") and all(i in m.prerequisites for i in items)
                 and len(set(items)) == len(items))
        self.attempt(valid, lambda: lc.check_prerequisites(
            self.states[exp], [{"item": i, "done": d} for i, d in results], actor, self.now(skew)), "check_prerequisites")
        if valid:
            m.prerequisites.update(dict(results))
            m.status = "ready" if all(m.prerequisites.values()) else "draft"

    @rule(data=st.data(), force=st.booleans(), actor=ACTORS)
    def start(self, data, force, actor):
        exp = data.draw(st.sampled_from(sorted(self.states)))
        m = self.models[exp]
        valid = m.status == "ready" or (m.status == "draft" and force)
        new = self.attempt(valid, lambda: lc.start(self.states[exp], actor, self.now(), force=force), "start")
        if valid:
            assert len(new) == 2 and new[1].phase == m.phases[0]
            m.status, m.phase = "running", m.phases[0]

    @rule(data=st.data(), actor=ACTORS, skew=st.integers(0, 30))
    def change_phase(self, data, actor, skew):
        exp = data.draw(st.sampled_from(sorted(self.states)))
        m = self.models[exp]
        phase = data.draw(st.one_of(st.sampled_from(m.phases[::-1]), PHASES))  # mostly its own phases
        valid = m.status == "running" and phase in m.phases and phase != m.phase
        self.attempt(valid, lambda: lc.change_phase(self.states[exp], phase, actor, self.now(skew)), "change_phase")
        if valid:
            m.phase = phase

    @rule(data=st.data(), fault_id=FAULT_IDS, actor=ACTORS,
          parameters=st.dictionaries(st.sampled_from(["zone", "ms", "graceful"]),
                                     st.one_of(st.text(max_size=5), st.integers(-10**6, 10**6),
                                               st.floats(allow_nan=False, allow_infinity=False), st.booleans()),
                                     max_size=3))
    def inject_fault(self, data, fault_id, actor, parameters):
        exp = data.draw(st.sampled_from(sorted(self.states)))
        m = self.models[exp]
        valid = m.status == "running" and fault_id not in m.used
        self.attempt(valid, lambda: lc.inject_fault(self.states[exp], "stop-instance", "db-primary", actor,
                                                    self.now(), parameters=parameters, fault_id=fault_id), "inject_fault")
        if valid:
            m.active.add(fault_id)
            m.used.add(fault_id)

    @rule(data=st.data(), fault_id=FAULT_IDS, actor=ACTORS)
    def remove_fault(self, data, fault_id, actor):
        exp = data.draw(st.sampled_from(sorted(self.states)))
        m = self.models[exp]
        valid = fault_id in m.active
        self.attempt(valid, lambda: lc.remove_fault(self.states[exp], fault_id, actor, self.now()), "remove_fault")
        m.active.discard(fault_id)

    @rule(data=st.data(), text=st.text(min_size=1, max_size=20), kind=st.sampled_from(["observation", "surprise"]),
          actor=ACTORS, skew=st.integers(0, 30))
    def add_note(self, data, text, kind, actor, skew):
        exp = data.draw(st.sampled_from(sorted(self.states)))
        self.attempt(True, lambda: lc.add_note(self.states[exp], text, actor, self.now(skew), note_kind=kind,
                                               expected="e", actual="a", tags=["t"]), "add_note")

    @rule(data=st.data(), by=ACTORS, dice=st.integers(0, 3))
    def abort(self, data, by, dice):
        if dice:  # aborts end timelines: keep them rarer than the other commands
            return
        exp = data.draw(st.sampled_from(sorted(self.states)))
        m = self.models[exp]
        valid = m.status in ("ready", "running")
        self.attempt(valid, lambda: lc.abort(self.states[exp], "breach", by, self.now()), "abort")
        if valid:
            m.status, m.phase = "aborted", ""

    @rule(data=st.data(), force=st.booleans(), actor=ACTORS, dice=st.integers(0, 2))
    def complete(self, data, force, actor, dice):
        if dice:  # completions end timelines too
            return
        exp = data.draw(st.sampled_from(sorted(self.states)))
        m = self.models[exp]
        valid = m.status == "running" and (not m.active or force)
        self.attempt(valid, lambda: lc.complete(self.states[exp], actor, self.now(), "done", force=force), "complete")
        if valid:
            m.status, m.phase = "completed", ""

    # ---- (e) events out of place are refused --------------------------------------------------
    @rule(data=st.data(), sequence=st.integers(1, 200))
    def out_of_place_events_are_refused(self, data, sequence):
        exp = data.draw(st.sampled_from(sorted(self.states)))
        state = self.states[exp]
        good = lc.add_note(state, "x", "amara", self.now())  # a valid next event in every status
        assume(sequence != good.sequence)
        with pytest.raises(InvalidTransition):
            apply(state, msgspec.structs.replace(good, sequence=sequence))
        others = [o for o in self.states if o != exp]
        if others:
            with pytest.raises(InvalidTransition, match=f"belongs to experiment {exp}, not to {others[0]}"):
                apply(self.states[others[0]], good)
        # The same event delivered again is recognised, not refused and not applied twice.
        if state.version > 1:
            assert apply(state, self.events[[e.experiment_id for e in self.events].index(exp)]) is state

    # ---- invariants ---------------------------------------------------------------------------
    @invariant()
    def the_state_agrees_with_the_model(self):
        for exp, state in self.states.items():
            m = self.models[exp]
            assert (state.status, state.phase, set(state.faults)) == (m.status, m.phase, m.active)
            assert state.version == len(state.event_ids) == sum(e.experiment_id == exp for e in self.events)
            # The correlation view agrees: at the instant of the last event, what is in force.
            assert lc.phase_at(state, state.updated_at) == m.phase
            assert {f.fault_id for f in lc.active_faults_at(state, state.updated_at)} == m.active
            assert {f.fault_id for f in state.fault_history} == m.used

    def teardown(self):
        # Whole-log checks run once per example: every step already checked the model, and
        # folding every prefix after every step would make a failing example slow to shrink.
        events = getattr(self, "events", [])
        event(f"timeline of {len(events) // 10 * 10}+ events")
        assert fold(events) == self.states                                               # (a)
        assert fold(decode_event(encode_event(e)) for e in events) == self.states        # (b)
        # (c) every prefix of a short log; about 25 spread over a long one (the cost is quadratic).
        n = len(events)
        for k in sorted({*range(1, n + 1, max(1, n // 25)), n} - {0}):
            prefix = events[:k]
            once, again = fold(prefix), fold(list(prefix))
            assert once == again == self.snapshots[k - 1]


LifecycleMachine.TestCase.settings = settings(
    max_examples=150, stateful_step_count=50, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
test_lifecycle_properties = LifecycleMachine.TestCase
