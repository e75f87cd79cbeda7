"""``hub report`` on a real run with known, injected effects: a fault that raises one route's error
rate, and a shadow backend that answers differently on one route.

The worker places the legs on the experiment by gateway and time and pairs shadow legs with their
primaries; the report, asked through the CLI while the hub runs, must name exactly that route
first under that fault and exactly that route first in the shadow comparison, mark the breached
steady-state measurements in the phase where they broke, draw valid PNG plots and link them from
the HTML.
"""

from __future__ import annotations

import datetime as dt
import re
import subprocess
import sys
import textwrap
import time
import uuid

import pytest

from hub.producer import send_records
from hub.records.generate import encode_event
from hub.records.request_leg import RequestLeg, new_event
from hub.testing import WorkerProcess

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse, pytest.mark.slow]

# The hub command line with the report and findings commands registered even where the entry
# point does not list them (yet).
CLI = ("import sys, hub.cli.main as m; "
       "m.COMMAND_MODULES += tuple(n for n in ('hub.cli.report', 'hub.cli.findings') if n not in m.COMMAND_MODULES); "
       "sys.exit(m.main(sys.argv[1:]))")

DEFINITION = textwrap.dedent("""
    id: {id}
    title: Orders survive a broken payment backend
    scenario: Break the payment backend behind /orders while catalogue and cart traffic flows.
    hypothesis: Retries keep the error rate under 5% and p99 under 1 s in every phase.
    expected_outcome: Nobody notices.
    steady_state:
      - {{name: shop-errors, sli: error_rate, source: requests, filter: {{leg: primary}}, tolerance: {{max: 0.05}}}}
      - {{name: shop-p99, sli: latency_p99, source: requests, tolerance: {{max: 1000}}}}
      - {{name: shop-shadow, sli: shadow_mismatch_rate, source: requests, filter: {{leg: shadow}},
          tolerance: {{max: 0.01}}}}
    environment: {{name: staging, kind: non-live, risk: low}}
    targets: {{gateways: [{gateway}], services: [shop-api]}}
    phases: [{{name: baseline, planned_minutes: 1}}, {{name: injection, planned_minutes: 1}},
             {{name: recovery, planned_minutes: 1}}]
""")
ROUTES = ("/catalogue", "/cart", "/orders")
PNG = b"\x89PNG\r\n\x1a\n"


def legs(gateway: str, per_route: int, failing: dict[str, float], shadowed: dict[str, float] | None = None):
    """``per_route`` primary legs on each route, ``failing[route]`` of them 503; every third primary of
    a ``shadowed`` route has a shadow leg on shop-v2, ``shadowed[route]`` of them answering differently."""
    now = dt.datetime.now(dt.timezone.utc)
    out = []
    for route in ROUTES:
        errors = int(per_route * failing.get(route, 0.0))
        shadows = list(range(0, per_route, 3)) if shadowed and route in shadowed else []
        differing = set(shadows[:int(len(shadows) * (shadowed or {}).get(route, 0.0))])
        for i in range(per_route):
            cid = uuid.uuid4().hex
            at = now + dt.timedelta(milliseconds=5 * i)
            leg = RequestLeg(correlation_id=cid, leg="primary", gateway=gateway, route=route, method="GET",
                             backend="shop-v1", status=503 if i < errors else 200, latency_ms=20.0 + i % 7,
                             event_time=at, response_hash=f"body-{route}")
            out.append((cid.encode(), encode_event(new_event(leg, source="/test"))))
            if i in shadows:
                shadow = RequestLeg(correlation_id=cid, leg="shadow", gateway=gateway, route=route, method="GET",
                                    backend="shop-v2", status=200, latency_ms=22.0, event_time=at,
                                    response_hash="other" if i in differing else f"body-{route}")
                out.append((cid.encode(), encode_event(new_event(shadow, source="/test"))))
    return out


def hub(env, *args, check=True):
    result = subprocess.run([sys.executable, "-c", CLI, *args], env=env, capture_output=True, text=True, timeout=180,
                            stdin=subprocess.DEVNULL)
    if check:
        assert result.returncode == 0, f"hub {' '.join(args)}: {result.stdout}\n{result.stderr}"
    return result


def section(markdown: str, heading: str) -> str:
    start = markdown.index(heading)
    following = re.search(r"^#{2,3} ", markdown[start + len(heading):], re.M)
    return markdown[start: start + len(heading) + (following.start() if following else len(markdown))]


def test_the_report_names_the_faults_route_first_and_marks_the_breach(tmp_path, kafka_bootstrap):
    with WorkerProcess.start(tmp_path / "home", kafka_bootstrap, HUB_CORRELATION_LATENESS="1",
                             HUB_ACTOR="ana@gameday-room") as worker:
        env, topic = worker.env, worker.settings.topic_requests
        experiment, gateway = f"exp-{uuid.uuid4().hex[:6]}", f"gw-{uuid.uuid4().hex[:6]}"
        (tmp_path / "e.yaml").write_text(DEFINITION.format(id=experiment, gateway=gateway))
        hub(env, "experiment", "create", str(tmp_path / "e.yaml"))
        hub(env, "experiment", "start", experiment, "--force")
        send_records(kafka_bootstrap, topic, legs(gateway, 60, {}))
        count = f"SELECT count() FROM hub.requests WHERE experiment_id = '{experiment}'"
        assert worker.wait_for(count, 180, timeout=60) == 180
        hub(env, "experiment", "phase", experiment, "injection")
        hub(env, "inject", experiment, "--action", "fail-requests", "--target", "payments", "--fault-id", "payments-503")
        time.sleep(1.2)  # the legs must fall inside the fault's window, after the lateness
        send_records(kafka_bootstrap, topic, legs(gateway, 60, {"/orders": 0.4}, {"/cart": 0.5, "/catalogue": 0.0}))
        assert worker.wait_for(count, 400, timeout=60) == 400
        pairs = f"SELECT count() FROM hub.shadow_pairs WHERE experiment_id = '{experiment}'"
        assert worker.wait_for(pairs, 40, timeout=60) == 40
        time.sleep(0.5)
        hub(env, "experiment", "remove", experiment, "payments-503")
        hub(env, "experiment", "phase", experiment, "recovery")
        time.sleep(1.2)
        send_records(kafka_bootstrap, topic, legs(gateway, 60, {}))
        assert worker.wait_for(count, 580, timeout=60) == 580
        hub(env, "note", experiment, "Retries did not hide payment errors", "--surprise", "--expected", "<5% errors",
            "--actual", "13% errors during injection", "--tag", "payments")
        hub(env, "note", experiment, "Add a circuit breaker on /orders", "--tag", "follow-up")
        hub(env, "experiment", "complete", experiment, "--summary", "payments need a breaker")
        worker.wait_for(f"SELECT count() FROM hub.experiment_events WHERE experiment_id = '{experiment}'", 10,
                        timeout=30)

        out = tmp_path / "report"
        result = hub(env, "report", experiment, "--out", str(out))
        assert "report.md" in result.stdout and "report.html" in result.stdout
        assert "... " in result.stderr  # progress lines
        missing = hub(env, "report", "no-such-experiment", "--out", str(tmp_path / "x"), check=False)
        assert missing.returncode == 2 and "no experiment" in missing.stderr

    markdown = (out / "report.md").read_text()
    fault = section(markdown, "### payments-503: fail-requests on payments")
    routes = re.findall(r"`(/[a-z]+)`", fault)
    assert routes[0] == "/orders", fault
    ranked = [line for line in fault.splitlines() if line.startswith("| 1 |")]
    assert ranked and "`/orders`" in ranked[0]
    assert "0% -> 40%" in ranked[0]

    expected = section(markdown, "## Expected versus actual")
    rows = {tuple(c.strip() for c in line.strip("|").split("|")[:3]): line
            for line in expected.splitlines() if line.startswith("| shop-")}
    assert "**BREACHED**" in rows[("shop-errors", "error_rate", "injection")]
    assert "13.33%" in rows[("shop-errors", "error_rate", "injection")]
    assert "within" in rows[("shop-errors", "error_rate", "baseline")]
    assert "within" in rows[("shop-errors", "error_rate", "recovery")]
    assert all("BREACHED" not in line for key, line in rows.items() if key[0] == "shop-p99")

    assert "**BREACHED**" in rows[("shop-shadow", "shadow_mismatch_rate", "injection")]
    assert "25%" in rows[("shop-shadow", "shadow_mismatch_rate", "injection")]  # 10 of 40 pairs differ

    shadow = section(markdown, "## Shadow comparison")
    assert "not in this experiment" not in shadow
    assert re.findall(r"`(/[a-z]+)`", shadow)[0] == "/cart", shadow
    assert "10 of 20 shadow responses" in shadow
    follow = section(markdown, "## Follow-ups")
    assert "Retries did not hide payment errors" in follow and "Add a circuit breaker on /orders" in follow
    assert "shop-errors" in follow  # the breached tolerance too

    html = (out / "report.html").read_text()
    for name in ("traffic.png", "latency.png", "steady_state.png"):
        data = (out / name).read_bytes()
        assert data.startswith(PNG) and len(data) > 5_000, name
        assert f'<img src="{name}"' in html
    assert "<strong>BREACHED</strong>" in html and "/orders" in html
