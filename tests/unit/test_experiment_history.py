"""``hub experiment history`` lines up its columns: an event stamped on a whole second (no
milliseconds) prints its time as wide as the others, and a long actor widens its column."""

from __future__ import annotations

import textwrap
from datetime import datetime, timedelta, timezone

from hub.cli.experiment import history_lines
from hub.experiments import lifecycle as lc
from hub.experiments.definition import parse_definition

T0 = datetime(2026, 12, 7, 10, 0, tzinfo=timezone.utc)  # a whole second: isoformat() has no fraction
DEFINITION = textwrap.dedent("""
    id: patients-history
    title: Patients ride out a database outage
    scenario: Stop the database while traffic flows.
    hypothesis: The API keeps answering.
    expected_outcome: Error rate stays under 5%.
    steady_state:
      - {name: errors, sli: error_rate, source: requests, tolerance: {max: 0.05}}
    environment: {name: staging, kind: non-live, risk: low}
    targets: {services: [patient-api]}
""")


def test_history_columns_line_up_with_and_without_milliseconds():
    events, state = [], None

    def do(result):
        nonlocal state
        for event in result if isinstance(result, list) else [result]:
            state = lc.apply(state, event)
            events.append(event)

    do(lc.create(parse_definition(DEFINITION), "amara", T0))
    do(lc.start(state, "amara", T0 + timedelta(seconds=5, milliseconds=250), force=True))
    do(lc.add_note(state, "latency rose", "chaostoolkit-runner@gameday-room.example", T0 + timedelta(seconds=9)))
    lines = history_lines(events)
    times = [line.split()[1] for line in lines]
    assert times[0] == "2026-12-07T10:00:00.000Z" and times[-1] == "2026-12-07T10:00:09.000Z"
    assert "2026-12-07T10:00:05.250Z" in times and len({len(t) for t in times}) == 1
    kinds = [line.index(" " + e.__struct_config__.tag) for line, e in zip(lines, events)]
    assert len(set(kinds)) == 1, lines  # every kind starts in the same column
    actors = [line.index(" " + e.actor) for line, e in zip(lines, events)]
    assert len(set(actors)) == 1, lines
