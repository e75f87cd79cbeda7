"""The noise model cannot be poisoned by primary failures, seen through the gateway's own pairing.

A phase where the primary answers 503 (error bodies that differ from the secondary's answer in
every field), then the primary recovers and the shadow differs from it in one field on every
fifth request (a real replica difference). The failing phase teaches the noise model nothing, its
pairs are ``primary_failed`` and never noise, and afterwards every real difference is reported as a
``body_mismatch`` in the field that differs; the other pairs are plain matches.
"""

from __future__ import annotations

import asyncio
import json

from tests.integration.test_gateway_hostile import Harness, RawBackend, req, response

CONFIG = {"routes": [{"path": "/accounts/{id}", "backend": "primary",
                      "shadow": {"backend": "shadow", "percent": 100, "secondary": "secondary"}}]}
FAILING, HEALTHY = 40, 50


def _id(seen) -> int:
    return int(seen.target.rsplit("/", 1)[1])


def _account(i: int, balance: int = 100) -> bytes:
    return json.dumps({"id": i, "name": f"patient {i}", "balance": balance}).encode()


def test_primary_failures_teach_no_noise_and_real_differences_stay_mismatches():
    state = {"failing": True}

    def primary(seen):
        i = _id(seen)
        if state["failing"]:
            return response(503, json.dumps({"error": "database unavailable", "attempt": i}).encode())
        return response(body=_account(i))

    def shadow(seen):
        i = _id(seen)
        return response(body=_account(i, 90 if i % 5 == 0 else 100))  # the replica lags on every fifth account

    async def run():
        backends = {"primary": RawBackend(primary), "shadow": RawBackend(shadow),
                    "secondary": RawBackend(lambda seen: response(body=_account(_id(seen))))}
        async with Harness(CONFIG, backends) as h:
            for i in range(FAILING):
                assert (await h.send(req("GET", f"/accounts/{i}"))).status == 503
            await h.gateway.drain()
            state["failing"] = False
            for i in range(FAILING, FAILING + HEALTHY):
                assert (await h.send(req("GET", f"/accounts/{i}"))).status == 200
            await h.gateway.drain()
            return h.pairs, h.gateway.noise.snapshot()

    records, noise = asyncio.run(run())
    # a pair record leaves out fields at their defaults (noise false, no fields)
    pairs = [{"noise": False, "noise_fields": [], "differing_fields": [], **r["data"]} for r in records]
    assert len(pairs) == FAILING + HEALTHY
    failing = [p for p in pairs if p["primary_status"] == 503]
    healthy = [p for p in pairs if p["primary_status"] == 200]
    assert len(failing) == FAILING and len(healthy) == HEALTHY
    # a failed primary says nothing about the shadow, and is never noise
    assert {(p["outcome"], p["noise"], tuple(p["noise_fields"])) for p in failing} == {("primary_failed", False, ())}
    # the failing phase taught nothing: only the healthy phase's clean comparisons count
    assert noise["/accounts/{id}"] == {"compared": HEALTHY, "skipped": FAILING, "rates": {}}
    mismatches = [p for p in healthy if p["outcome"] == "body_mismatch"]
    assert len(mismatches) == HEALTHY // 5  # the true mismatch rate, 20%, not 0%
    assert all(p["differing_fields"] == ["balance"] and p["noise_fields"] == [] for p in mismatches)
    assert {(p["outcome"], p["noise"]) for p in healthy if p not in mismatches} == {("match", False)}
