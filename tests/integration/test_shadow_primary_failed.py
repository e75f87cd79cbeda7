"""A primary that fails on one route says nothing about the shadow version, seen through the
gateway's own pairing, the stored pairs (chDB) and the shadow mismatch measurement.

Two routes behind the real gateway, every request shadowed. On ``/patients/{id}/allergies`` the
primary answers 503 while the shadow answers 200: those pairs are ``primary_failed``, never noise.
On ``/patients/{id}`` both answer; the shadow differs from the primary in ``allergy_count`` on
every fifth request (a real difference) and in ``generated_at`` on every request, a field the
configuration declares nondeterministic. The judge's shadow mismatch value, the Grafana alert
rule's and the dashboard panel's SQL are the true rate of real differences among the pairs whose
primary answered (1 in 5), not diluted nor inflated by the primary's failures, and
``generated_at`` is never listed as differing. The report's shadow-differences question shows the
failed primary's pairs apart.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json

import pytest

from hub.questions import ask
from hub.shadow.records import PAIR_COLUMNS, decode_pairs
from hub.sql import run_readonly
from tests.integration.test_gateway_hostile import Harness, RawBackend, req, response
from tests.integration.test_measure_property import T0, UTC, both_forms, rule

pytestmark = [pytest.mark.clickhouse]

CONFIG = {
    "comparison": {"nondeterministic": ["generated_at"]},
    "routes": [{"path": "/patients/{id}/allergies", "backend": "primary", "shadow": {"backend": "shadow", "percent": 100}},
               {"path": "/patients/{id}", "backend": "primary", "shadow": {"backend": "shadow", "percent": 100}}],
}
PER_ROUTE = 20


def _body(i: int, allergies: int, stamp: str) -> bytes:
    return json.dumps({"id": i, "allergy_count": allergies, "generated_at": stamp}).encode()


def _gateway_pairs() -> list[dict]:
    def primary(seen):
        i = int(seen.target.split("/")[2])
        if seen.target.endswith("/allergies"):
            return response(503, json.dumps({"error": "database unavailable", "generated_at": f"p{i}"}).encode())
        return response(body=_body(i, 2, f"p{i}"))

    def shadow(seen):
        i = int(seen.target.split("/")[2])
        return response(body=_body(i, 3 if i % 5 == 0 else 2, f"s{i}"))

    async def run():
        async with Harness(CONFIG, {"primary": RawBackend(primary), "shadow": RawBackend(shadow)}) as h:
            for i in range(PER_ROUTE):
                assert (await h.send(req("GET", f"/patients/{i}/allergies"))).status == 503
                assert (await h.send(req("GET", f"/patients/{i}"))).status == 200
            await h.gateway.drain()
            return h.pairs

    records = asyncio.run(run())
    rows = decode_pairs([("hub.pairs", 0, n, None, json.dumps(r).encode(), 0) for n, r in enumerate(records)],
                        1 << 20).rows
    assert len(rows) == 2 * PER_ROUTE
    pairs = []
    for n, row in enumerate(rows):  # placed in the seconds the measurement's window covers
        p = dict(zip(PAIR_COLUMNS, row))
        p["event_time"] = dt.datetime.fromtimestamp(T0 + n % 10 + 0.5, UTC)
        pairs.append(p)
    return pairs


def test_a_failing_primary_is_not_blamed_on_the_shadow(store, hub_settings):
    pairs = _gateway_pairs()
    allergies = [p for p in pairs if p["route"] == "/patients/{id}/allergies"]
    patients = [p for p in pairs if p["route"] == "/patients/{id}"]
    assert {(p["outcome"], p["noise"], p["primary_status"], p["shadow_status"]) for p in allergies} == \
        {("primary_failed", False, 503, 200)}
    assert all("generated_at" not in p["differing_fields"] for p in pairs)
    assert sorted(p["outcome"] for p in patients) == ["body_mismatch"] * 4 + ["match"] * 16
    assert {tuple(p["differing_fields"]) for p in patients if p["outcome"] == "body_mismatch"} == {("allergy_count",)}
    assert {(p["noise"], tuple(p["noise_fields"])) for p in patients if p["outcome"] == "match"} == \
        {(True, ("generated_at",))}

    # the judge's value, the Grafana alert rule's and the dashboard panel's: 4 real differences
    # among the 20 pairs whose primary answered
    condition = rule(measurement="shadow_mismatch_rate", scope={"target": "shadow"})
    assert both_forms(store, hub_settings, condition, pair_list=pairs) == (0.2, 0.2, 0.2)

    # stored as such, visible in SQL
    db = store.database
    rows = store.query(f"SELECT route, outcome, count(), countIf(noise), countIf(has(differing_fields, 'generated_at')) "
                       f"FROM {db}.shadow_pairs WHERE shadow_backend = 'shadow' AND gateway = 'gw-test' "
                       f"AND correlation_id IN ({', '.join(repr(p['correlation_id']) for p in pairs)}) "
                       f"GROUP BY route, outcome ORDER BY route, outcome").result_rows
    assert rows == [("/patients/{id}", "body_mismatch", 4, 0, 0), ("/patients/{id}", "match", 16, 16, 0),
                    ("/patients/{id}/allergies", "primary_failed", 20, 0, 0)]

    # the report's question: the failed primary's pairs apart, the rate over the pairs it answered
    [eid] = {r[0] for r in store.query(f"SELECT DISTINCT experiment_id FROM {db}.shadow_pairs WHERE correlation_id = "
                                        f"{pairs[0]['correlation_id']!r}").result_rows}
    answer = ask("shadow-differences", {"experiment": eid}, db, lambda sql: run_readonly(store, sql))
    routes = {r[answer["columns"].index("route")]: dict(zip(answer["columns"], r)) for r in answer["rows"]}
    assert {route: (r["pairs"], r["differing"], r["mismatch_rate"], r["primary_failed"]) for route, r in routes.items()} \
        == {"/patients/{id}": (20, 4, 0.2, 0), "/patients/{id}/allergies": (0, 0, None, 20)}
    assert "primary_failed" in routes["/patients/{id}/allergies"]["outcomes"]
