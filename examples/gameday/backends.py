"""The small backends of the gameday in this folder, and the switch that makes the primary fail.

    python examples/gameday/backends.py [--host 127.0.0.1] [--base-port 8181]

One process, five listeners (ports from --base-port on):

| port      | backend            | role                                                       |
|-----------|--------------------|------------------------------------------------------------|
| base      | patient-api        | the primary; fails on one route while the fault is on      |
| base + 1  | patient-api-b      | a second instance of the primary (the noise model's secondary) |
| base + 2  | patient-api-v2     | the shadow: the next version, which changes the allergy format |
| base + 3  | patient-api-canary | the canary                                                 |
| base + 4  | control            | the fault switch and the halt target                       |

Routes (GET): ``/patients/{id}``, ``/patients/{id}/allergies``, ``/appointments/{id}``. Answers are
JSON, the same from every backend for the same id, apart from ``generated_at`` (declared
nondeterministic in gateway.yaml) and, by design, the shadow's allergies (each allergy carries a
``severity`` the current version does not have).

Control (JSON):

- ``POST /fault`` ``{"route": "/appointments/{id}", "rate": 0.6}``: the primary answers 503 to that
  share of the route's requests (``status`` and ``latency_ms`` may be given too);
- ``DELETE /fault``: no fault;
- ``POST /halt``: the halt target of the experiment: removes the fault and records the call;
- ``GET /state``: the fault, the halt calls and what each backend answered (per route and status).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import time

from aiohttp import web

ROUTES = ("/patients/{id}", "/patients/{id}/allergies", "/appointments/{id}")
BACKENDS = ("patient-api", "patient-api-b", "patient-api-v2", "patient-api-canary")
ALLERGENS = ("penicillin", "peanuts", "latex", "pollen", "shellfish", "aspirin")


class State:
    def __init__(self, seed: int = 7):
        self.fault: dict | None = None
        self.halts: list[dict] = []
        self.served: dict[str, dict[str, dict[str, int]]] = {b: {} for b in BACKENDS}
        self.random = random.Random(seed)

    def count(self, backend: str, route: str, status: int) -> None:
        per_route = self.served[backend].setdefault(route, {})
        per_route[str(status)] = per_route.get(str(status), 0) + 1

    def snapshot(self) -> dict:
        return {"fault": self.fault, "halt_calls": self.halts, "served": self.served}


def _body(route: str, pid: int, backend: str) -> dict:
    stamp = {"generated_at": time.time()}
    if route == "/patients/{id}":
        return {"id": pid, "name": f"Patient {pid}", "born": 1940 + pid % 70, "ward": "ABCD"[pid % 4], **stamp}
    if route == "/patients/{id}/allergies":
        allergies = [{"substance": ALLERGENS[(pid + i) % len(ALLERGENS)]} for i in range(pid % 3)]
        if backend == "patient-api-v2":  # the next version adds a field: a real difference, on purpose
            for a in allergies:
                a["severity"] = "moderate"
            if not allergies:
                allergies = [{"substance": "none recorded", "severity": "none"}]
        return {"patient": pid, "allergies": allergies, **stamp}
    return {"id": pid, "patient": pid * 7 % 1000, "slot": f"2026-12-{1 + pid % 28:02d}T{8 + pid % 9:02d}:00",
            **stamp}


def backend_app(name: str, state: State) -> web.Application:
    async def serve(request: web.Request, route: str) -> web.Response:
        try:
            pid = int(request.match_info["id"])
        except ValueError:
            return web.json_response({"error": "id must be a number"}, status=400)
        await asyncio.sleep(state.random.uniform(0.002, 0.012))
        fault = state.fault
        if name == "patient-api" and fault and fault["route"] == route and state.random.random() < fault["rate"]:
            if fault.get("latency_ms"):
                await asyncio.sleep(fault["latency_ms"] / 1000)
            state.count(name, route, fault.get("status", 503))
            return web.json_response({"error": f"{route}: store unavailable"}, status=fault.get("status", 503))
        state.count(name, route, 200)
        return web.json_response(_body(route, pid, name))

    app = web.Application()
    for route in ROUTES:
        app.router.add_get(route, lambda request, r=route: serve(request, r))
    return app


def control_app(state: State) -> web.Application:
    async def set_fault(request: web.Request) -> web.Response:
        spec = await request.json()
        if spec.get("route") not in ROUTES:
            return web.json_response({"error": f"route must be one of {', '.join(ROUTES)}"}, status=400)
        state.fault = {"route": spec["route"], "rate": float(spec.get("rate", 0.6)),
                       "status": int(spec.get("status", 503)), "latency_ms": float(spec.get("latency_ms", 0)),
                       "since": time.time()}
        return web.json_response(state.fault)

    async def clear_fault(request: web.Request) -> web.Response:
        state.fault = None
        return web.json_response({"fault": None})

    async def halt(request: web.Request) -> web.Response:
        try:
            payload = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            payload = {}
        payload = payload if isinstance(payload, dict) else {}
        alert = payload.get("alert") if isinstance(payload.get("alert"), dict) else {}
        state.halts.append({"time": time.time(), "fault_was_on": state.fault is not None,
                            "experiment_id": str(payload.get("experiment_id") or alert.get("experiment_id") or ""),
                            "rule": str(payload.get("rule") or alert.get("rule") or "")})
        state.fault = None
        return web.json_response({"halted": True})

    async def get_state(request: web.Request) -> web.Response:
        return web.json_response(state.snapshot())

    app = web.Application()
    app.router.add_post("/fault", set_fault)
    app.router.add_delete("/fault", clear_fault)
    app.router.add_post("/halt", halt)
    app.router.add_get("/state", get_state)
    return app


async def main(host: str, base_port: int) -> None:
    state = State()
    runners = []
    apps = [backend_app(name, state) for name in BACKENDS] + [control_app(state)]
    for offset, app in enumerate(apps):
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, host, base_port + offset).start()
        runners.append(runner)
    names = list(BACKENDS) + ["control"]
    print("backends: " + ", ".join(f"{n} http://{host}:{base_port + i}" for i, n in enumerate(names)), flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        for runner in runners:
            await runner.cleanup()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="the gameday's backends and fault switch (see the module text)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--base-port", type=int, default=8181, help="port of patient-api; the others follow")
    args = parser.parse_args()
    try:
        asyncio.run(main(args.host, args.base_port))
    except KeyboardInterrupt:
        pass
