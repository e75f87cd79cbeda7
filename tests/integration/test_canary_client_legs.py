"""The canary judge on stored legs (the real ClickHouse engine): legs the client caused (408, or an
error starting with ``client:``, as the gateway writes for a client that went away or sent its body
too slowly) are left out of the comparison and counted apart, so a canary whose clients misbehaved
is not failed for it."""

from __future__ import annotations

import datetime as dt
import random
import uuid

import pytest

from hub.records.request_leg import REQUEST_COLUMNS
from hub.shadow.canary import judge_canary

pytestmark = [pytest.mark.clickhouse]


def test_judge_canary_on_stored_legs_leaves_out_what_the_client_caused(store):
    rnd = random.Random(4)
    t = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.timezone.utc)
    rows = []

    def leg(leg_name, backend, status, latency, error=""):
        rows.append((uuid.uuid4(), t, "exp-client", "", uuid.uuid4().hex, leg_name, "gw", "/p/{id}", "GET",
                     backend, status, latency, 0, 0, "", error, "/hub-gateway/gw"))

    for _ in range(200):
        leg("primary", "v1", 200, rnd.lognormvariate(3, 0.4))
        leg("canary", "v2", 200, rnd.lognormvariate(3, 0.4))
    for _ in range(60):
        leg("canary", "v2", 408, 0.0, "client: the request body paused longer than 10 s")
        leg("canary", "v2", 0, 0.0, "client: closed the connection before the answer (the backend request was "
                                    "cancelled)")
    store.insert(f"{store.database}.requests", rows, REQUEST_COLUMNS)
    verdicts = {v.metric: v for v in judge_canary(store, "exp-client")}
    assert verdicts["error_rate"].verdict == "pass", verdicts["error_rate"]
    assert verdicts["error_rate"].canary_samples == 200
    assert verdicts["error_rate"].canary_client_legs == 120
    assert verdicts["latency"].verdict == "pass"
