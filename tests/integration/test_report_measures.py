"""The report's steady-state numbers on a real store (chDB) mean what the judge and the dashboards
mean (``hub.abort.measure``): a ``service`` filter is the leg's gateway or backend, each occurrence
of a phase is measured on its own, and legs of a Vegeta import of the gateway's traffic are not
counted twice (the report says which legs it counted)."""

from __future__ import annotations

import uuid

import msgspec
import pytest

from hub.experiments.definition import Measurement
from hub.records.request_leg import REQUEST_COLUMNS
from hub.report.build import build_report
from hub.sql import run_readonly
from tests.integration.test_questions_phases_sources import legs, store_run

pytestmark = [pytest.mark.clickhouse]


def test_steady_state_per_phase_occurrence_with_the_service_filter_and_one_source(store):
    eid = f"rep-{uuid.uuid4().hex[:6]}"
    steady = msgspec.convert({"name": "api-errors", "sli": "error_rate", "source": "requests",
                              "filter": {"leg": "primary", "service": "patient-api"}, "tolerance": {"max": 0.2}},
                             Measurement)
    store_run(store, eid, steady_state=[steady], abort_conditions=[])
    rows = (legs(eid, 2, 10, 1, "/hub-gateway/edge-gw") + legs(eid, 4, 10, 5, "/hub-gateway/edge-gw")
            + legs(eid, 6, 20, 0, "/hub-gateway/edge-gw") + legs(eid, 8, 10, 8, "/hub-gateway/edge-gw")
            + legs(eid, 8, 10, 0, "/vegeta"))  # the load tool's view of the same injection traffic
    other = [r[:9] + ("patients-db",) + (503,) + r[11:] for r in legs(eid, 2, 10, 10, "/hub-gateway/edge-gw")]
    store.insert(f"{store.database}.requests", rows + other, REQUEST_COLUMNS)

    report = build_report(eid, lambda sql: run_readonly(store, sql), store.database)
    got = [(m.phase, m.value, m.samples) for m in report.measurements]
    assert got == [("baseline (1)", 0.1, 10), ("injection (1)", 0.5, 10), ("baseline (2)", 0.0, 20),
                   ("injection (2)", 0.8, 10)]
    assert [(r["phase"], r["requests"]) for r in report.per_phase] == [
        ("baseline (1)", 20), ("injection (1)", 10), ("baseline (2)", 20), ("injection (2)", 10)]
    assert (report.sources_counted, report.sources_stored) == ("gateway", "gateway, vegeta")
