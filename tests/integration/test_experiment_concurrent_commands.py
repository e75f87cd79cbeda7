"""Two commands on one experiment at once: the one that loses the race on the timeline is decided
again on the state that won, so an abort is never reported done while the timeline refused it."""

from __future__ import annotations

import uuid
from pathlib import Path

import msgspec
import pytest

from hub.errors import UserError
from hub.experiments import lifecycle
from hub.experiments.definition import load_definition
from hub.experiments.service import ExperimentService, now
from hub.settings import load_settings

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "experiments" / "patient-api-db-failover.yaml"


@pytest.fixture
def service(tmp_path, kafka_bootstrap):
    settings = load_settings({"HUB_HOME": str(tmp_path / "home"), "HUB_KAFKA_BOOTSTRAP": kafka_bootstrap,
                              "HUB_TOPIC_EXPERIMENTS": f"hub.experiments.{uuid.uuid4().hex[:8]}"})
    svc = ExperimentService(settings)
    yield svc
    svc.close()


def running(service) -> str:
    definition = msgspec.structs.replace(load_definition(EXAMPLE), id=f"race-{uuid.uuid4().hex[:6]}")
    eid = service.create(definition).experiment_id
    service.command(eid, lambda s: lifecycle.start(s, "tester", now(), force=True))
    assert service.get(eid).status == "running"
    return eid


def test_an_abort_that_loses_the_race_to_a_note_is_appended_again_and_lands(service):
    eid = running(service)
    other = ExperimentService(service.settings)
    raced = []

    def abort_after_a_concurrent_note(state):
        if not raced:  # another command appends between this command's read and its append
            raced.append(other.command(eid, lambda s: lifecycle.add_note(s, "a note from the room", "someone", now())))
        return lifecycle.abort(state, "error rate over budget", "rule:api-failing", now(), actor="judge")

    try:
        [event] = service.command(eid, abort_after_a_concurrent_note)
    finally:
        other.close()
    state = service.get(eid)
    assert raced and state.status == "aborted"
    assert state.event_ids[event.sequence - 1] == event.event_id  # what the command returned is on the timeline
    assert [n.text for n in state.notes] == ["a note from the room"]


def test_a_decision_that_the_winning_state_refuses_is_refused(service):
    eid = running(service)
    other = ExperimentService(service.settings)
    raced = []

    def abort_while_another_aborts(state):
        if not raced:
            raced.append(other.command(eid, lambda s: lifecycle.abort(s, "by hand", "operator", now(), actor="op")))
        return lifecycle.abort(state, "error rate over budget", "rule:api-failing", now(), actor="judge")

    try:
        with pytest.raises(UserError, match="aborted"):
            service.command(eid, abort_while_another_aborts)
    finally:
        other.close()
    state = service.get(eid)
    assert (state.status, state.abort_reason) == ("aborted", "by hand")
