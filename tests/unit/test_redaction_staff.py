"""People of the team are no patients: the participants, prerequisite owners and approver of a
definition are kept as written when they are names or handles, on the log and in the store alike;
the halt targets stay as written on the log (the judge calls them) and are stored masked."""

from __future__ import annotations

import datetime as dt
import json
import textwrap

from hub.experiments import lifecycle
from hub.experiments.definition import parse_definition
from hub.experiments.events import encode_event
from hub.experiments.projection import PROJECTION_COLUMNS
from hub.redaction import Redactor
from hub.redaction.events import redact_event

NOW = dt.datetime(2026, 12, 7, 12, 0, tzinfo=dt.timezone.utc)
HALT = "http://opsuser:S3cretPw99@127.0.0.1:44123/halt?token=TOPSECRET123"
DEFINITION = textwrap.dedent(f"""
    id: og-secret
    title: Patient API sheds a failing appointments store
    scenario: The primary fails /patients/{{id}}, /patients/{{id}}/allergies stay up.
    hypothesis: Error rate stays low.
    expected_outcome: The abort fires.
    steady_state:
      - {{name: errors, sli: error_rate, source: requests, tolerance: {{max: 0.05}}}}
    participants:
      - {{name: Amara Okafor, role: lead}}
      - {{name: Jonas Weber, role: injector}}
      - {{name: Priya Raman, role: observer}}
      - {{name: jane.doe@hospital.org, role: scribe}}
      - {{name: "Jonas Weber, DOB 03/12/1984", role: responder}}
    prerequisites:
      - {{item: Halt target reachable from the hub, owner: Jonas Weber}}
      - {{item: Patient Jane Brambleworth moved to bed 4, owner: Priya Raman}}
      - {{item: Dashboards ready, owner: ops-oncall}}
    environment: {{name: staging, kind: production, risk: low, approver: Priya Raman}}
    targets: {{gateways: [edge]}}
    halt:
      - {{name: fault-switch, url: "{HALT}"}}
""")


def created():
    return lifecycle.create(parse_definition(DEFINITION), "root@vm", NOW)


def check_staff(d):
    assert [p["name"] for p in d["participants"]][:3] == ["Amara Okafor", "Jonas Weber", "Priya Raman"]
    assert [p["name"] for p in d["participants"]][3:] == ["[REDACTED:staff]", "[REDACTED:staff]"]
    assert [p["owner"] for p in d["prerequisites"]] == ["Jonas Weber", "Priya Raman", "ops-oncall"]
    assert d["environment"]["approver"] == "Priya Raman"
    assert "Brambleworth" not in d["prerequisites"][1]["item"]  # free text stays redacted
    assert list(d["participants"][1]) == ["name", "role"]


def test_the_log_keeps_staff_names_and_the_halt_target_as_written():
    event = redact_event(created())
    check_staff(event.definition)
    assert event.definition["halt"] == [{"url": HALT, "name": "fault-switch"}]


def test_the_store_keeps_staff_names_and_masks_the_halt_target():
    event = redact_event(created())
    row = tuple({"payload": encode_event(event).decode(), "actor": "root@vm", "kind": "experiment_created",
                 "experiment_id": event.experiment_id}.get(c, "") for c in PROJECTION_COLUMNS)
    batch = type("B", (), {"rows": [row]})()
    out = dict(zip(PROJECTION_COLUMNS, Redactor().experiment_events(batch).rows[0]))
    doc = json.loads(out["payload"])
    check_staff(doc["definition"])
    assert doc["definition"]["halt"] == [{"url": "http://***@127.0.0.1:44123/halt?token=***", "name": "fault-switch"}]
    assert "S3cretPw99" not in out["payload"] and "TOPSECRET123" not in out["payload"]
    # the rest of the definition is stored as it was appended: no second pass over the text
    assert doc["definition"]["scenario"] == event.definition["scenario"]
