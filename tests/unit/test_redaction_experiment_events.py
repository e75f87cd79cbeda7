"""Experiment ids the hub makes are kept; experiment events are masked before the log, and stay valid."""

from __future__ import annotations

import datetime as dt
import textwrap

import pytest

from hub.experiments import lifecycle
from hub.experiments.definition import parse_definition
from hub.records.request_leg import REQUEST_COLUMNS
from hub.redaction import Redactor, redact_rows
from hub.redaction.events import redact_event

NOW = dt.datetime(2026, 12, 7, 12, 0, tzinfo=dt.timezone.utc)
DEFINITION = textwrap.dedent("""
    id: exp-c2964655
    title: Patient API rides out a failover seen by Mr. Zebulon Quillfeather
    scenario: Patient Jane Brambleworth, MRN 004417829, in bed 4.
    hypothesis: Error rate stays low.
    expected_outcome: Failover within a minute.
    steady_state:
      - {name: errors, sli: error_rate, source: requests, tolerance: {max: 0.05}}
    environment: {name: staging, kind: non-live, risk: low}
    targets: {gateways: [edge]}
    phases:
      - {name: baseline, planned_minutes: 1}
    abort_grace: 15s
""")


def _row(**values) -> tuple:
    return tuple(values.get(c, "") for c in REQUEST_COLUMNS)


@pytest.mark.parametrize("experiment_id", ["exp-c2964655", "checkout-failover-3f9a1c", "exp-29646551",
                                           "patient-api-db-failover-0a1b2c", "exp-1", "e"])
def test_experiment_ids_the_hub_makes_are_stored_as_created(experiment_id):
    [row] = redact_rows(None, "requests", REQUEST_COLUMNS, [_row(experiment_id=experiment_id)])
    assert row[REQUEST_COLUMNS.index("experiment_id")] == experiment_id


@pytest.mark.parametrize("experiment_id", ["mrn-004417829", "foo-00441782", "E00441782", "patient-dundunworth",
                                           "zebulon-quillfeather-1962-03-14", "jane-brambleworth"])
def test_an_experiment_id_column_still_replaces_patient_data(experiment_id):
    [row] = redact_rows(None, "requests", REQUEST_COLUMNS, [_row(experiment_id=experiment_id)])
    assert row[REQUEST_COLUMNS.index("experiment_id")].startswith("[REDACTED:id:")


def test_an_alert_id_of_a_hub_experiment_is_kept():
    engine = Redactor()._engine
    assert engine.struct("alert", "exp-c2964655/api-failing/1733590000", []) == "exp-c2964655/api-failing/1733590000"
    assert engine.struct("id", "exp-c2964655/api-failing/1733590000", []).startswith("[REDACTED:id:")


def test_a_created_event_is_masked_and_its_definition_stays_valid():
    event = lifecycle.create(parse_definition(DEFINITION, "test"), "jane.doe@example.org", NOW)
    masked = redact_event(event)
    text = repr(masked)
    for seed in ("Quillfeather", "Brambleworth", "004417829", "jane.doe"):
        assert seed not in text, seed
    assert masked.experiment_id == masked.definition["id"] == "exp-c2964655"
    assert masked.definition["abort_grace"] == "15s"  # a field name is no name (abort_grace: "grace")
    assert "Patient API" in masked.definition["title"]  # an acronym after a cue is no name
    lifecycle.apply(None, masked)  # the fold takes the masked definition


def test_notes_reasons_and_summaries_are_masked_and_ids_kept():
    state = lifecycle.apply(None, lifecycle.create(parse_definition(DEFINITION, "test"), "ana", NOW))
    note = lifecycle.add_note(state, "paged patient Zebulon Quillfeather, MRN 004417829", "ana", NOW,
                              note_kind="surprise", expected="DOB 03/14/1962", actual="chart for Jane Brambleworth",
                              tags=["mrn 004417829"])
    masked = redact_event(note)
    assert (masked.note_id, masked.sequence, masked.event_id, masked.time) == (
        note.note_id, note.sequence, note.event_id, note.time)
    for seed in ("Quillfeather", "Brambleworth", "004417829", "03/14/1962"):
        assert seed not in repr(masked), seed
    clean = lifecycle.add_note(state, "p99 went up during the failover", "ana", NOW)
    assert redact_event(clean) is clean
