"""HTTP route for canary judgment in the process that owns the store (``hub canary judge`` while the hub runs).

POST /v1/experiments/{id}/canary-judge   {"gateway", "alpha", "min_delta", "min_h", "min_samples", "store"}

Judges the experiment's canary legs against its primary legs per route (``hub.shadow.canary``),
stores the verdicts in ``canary_verdicts`` unless ``"store": false``, and answers
``{"experiment_id", "stored", "verdicts": [...]}``, each verdict with its test, p-value, effect
size and confidence. Every field of the body is optional; defaults are the CLI's.
"""

from __future__ import annotations

import asyncio
import math

from aiohttp import web

from hub.shadow.canary import Verdict, judge_canary, store_verdicts

_NUMBERS = {"alpha": (float, 0.0, 1.0), "min_delta": (float, 0.0, 1.0), "min_h": (float, 0.0, math.pi),
            "min_samples": (int, 1, 1_000_000_000)}


def verdict_json(v: Verdict) -> dict:
    return {**v.__dict__, "judged_at": v.judged_at.isoformat()}


def judge_options(data: dict) -> dict:
    """The judge's options from a request body; ValueError names the bad field."""
    unknown = sorted(set(data) - set(_NUMBERS) - {"gateway", "store"})
    if unknown:
        raise ValueError(f"unknown field {unknown[0]!r} (expected: alpha, gateway, min_delta, min_h, min_samples, store)")
    options: dict = {}
    for name, (kind, lo, hi) in _NUMBERS.items():
        if name in data:
            value = data[name]
            if isinstance(value, bool) or not isinstance(value, (int, float)) or (kind is int and value != int(value)):
                raise ValueError(f"{name}: expected {'an integer' if kind is int else 'a number'}, got {value!r}")
            inside = lo < value <= hi if name == "alpha" else lo <= value <= hi
            if not inside:
                raise ValueError(f"{name}: {value!r} is out of range")
            options[name] = kind(value)
    gateway = data.get("gateway")
    if gateway is not None and not isinstance(gateway, str):
        raise ValueError("gateway: expected a string")
    options["gateway"] = gateway or None
    return options


def add_canary_routes(app: web.Application, store, json_response) -> None:
    async def judge(request: web.Request) -> web.Response:
        experiment_id = request.match_info["id"]
        try:
            from hub.api.server import read_json

            # 400/413 for a body that is not a JSON object within the size and nesting limits
            data = await read_json(request, empty={}) if request.can_read_body else {}
            keep = data.pop("store", True)
            if not isinstance(keep, bool):
                raise ValueError("store: expected true or false")
            options = judge_options(data)
        except ValueError as exc:  # includes a body that is not JSON
            return json_response({"error": str(exc)}, status=400)

        def run():
            verdicts = judge_canary(store, experiment_id, **options)
            return verdicts, store_verdicts(store, verdicts) if keep else 0

        try:
            verdicts, stored = await asyncio.get_running_loop().run_in_executor(None, run)
        except Exception as exc:  # the store's own message, one line
            from hub.api.server import first_line

            return json_response({"error": f"canary judgment failed: {first_line(exc)}"}, status=500)
        return json_response({"experiment_id": experiment_id, "stored": stored,
                              "verdicts": [verdict_json(v) for v in verdicts]})

    app.router.add_post("/v1/experiments/{id}/canary-judge", judge)
