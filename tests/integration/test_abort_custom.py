"""Abort rules through a real worker: custom filtered counts and ratios, and the control-group
comparison that keeps a noisy but healthy experiment running while a fixed threshold fires."""

from __future__ import annotations

import datetime as dt
import json
import random
import subprocess
import sys
import textwrap
import time
import uuid

import pytest

from hub.abort.match import sql as match_sql
from hub.experiments.definition import RecordMatch
from hub.producer import send_records
from hub.records.generate import encode_event
from hub.records.request_leg import RequestLeg, new_event
from hub.testing import WorkerProcess

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse, pytest.mark.slow]

HEAD = textwrap.dedent("""
    id: {id}
    title: Abort rules under test
    scenario: Traffic through one gateway.
    hypothesis: The rules see what the data says.
    expected_outcome: The rules fire when the data says so.
    steady_state:
      - {{name: errors, sli: error_rate, source: requests, tolerance: {{max: 0.5}}}}
    environment: {{name: staging, kind: non-live, risk: low}}
    targets: {{gateways: [{gateway}]}}
    phases: [{{name: baseline, planned_minutes: 5}}]
    abort_conditions:
""")

CUSTOM_RULES = """\
  - {name: gateway-timeouts, measurement: ratio, where: {status: [504]}, of: {method: [GET]},
     window: 30s, comparison: ">", threshold: 0.1, min_samples: 50, severity: warn}
  - {name: slow-failed-writes, measurement: count, where: {method: [POST], failed: true, latency_ms_over: 1000},
     window: 30s, comparison: ">=", threshold: 5, severity: warn}
  - {name: server-errors, measurement: count, where: {status: ["5xx"], route: /never-called},
     window: 30s, comparison: ">=", threshold: 1, severity: warn}
"""

STATISTICAL_RULES = """\
  - {name: fixed-threshold, measurement: error_rate, window: 2s, comparison: ">", threshold: 0.2,
     min_samples: 50, severity: warn}
  - {name: canary-vs-control, measurement: error_rate, scope: {target: checkout-v2},
     control: {target: checkout-v1}, confidence: 0.999, window: 10s, comparison: ">", threshold: 0.05,
     min_samples: 200, severity: abort}
"""


def leg(gateway, at, *, method="GET", status=200, latency=20.0, backend="checkout-v1", route="/checkout"):
    cid = uuid.uuid4().hex
    value = RequestLeg(correlation_id=cid, leg="primary", gateway=gateway, route=route, method=method,
                       backend=backend, status=status, latency_ms=latency, event_time=at)
    return value


def send(bootstrap, topic, legs, key=b"one-partition"):
    """All legs under one key: one partition, packed into as few Kafka records as fit."""
    records = [(key, encode_event(new_event(v, source="/test"))) for v in legs]
    sent, _ = send_records(bootstrap, topic, records, events_per_record=1000)
    assert sent == len(legs)


def hub(env, *args):
    result = subprocess.run([sys.executable, "-m", "hub.cli.main", *args], env=env, capture_output=True, text=True,
                            timeout=120, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.fixture(scope="module")
def worker(tmp_path_factory, kafka_bootstrap):
    w = WorkerProcess.start(tmp_path_factory.mktemp("abort-custom") / "home", kafka_bootstrap)
    yield w
    w.stop()


def start_experiment(worker, tmp_path, rules):
    experiment, gateway = f"exp-{uuid.uuid4().hex[:6]}", f"gw-{uuid.uuid4().hex[:6]}"
    path = tmp_path / f"{experiment}.yaml"
    path.write_text(HEAD.format(id=experiment, gateway=gateway) + rules)
    hub(worker.env, "experiment", "create", str(path))
    hub(worker.env, "experiment", "start", experiment, "--force")
    return experiment, gateway


def alerts(worker, experiment):
    return worker.sql("SELECT rule, status, observed, samples, example_request_ids, top_contributors, message "
                      f"FROM hub.alerts WHERE kind = 'alert' AND experiment_id = '{experiment}' ORDER BY rule")


def test_custom_ratio_and_count_fire_with_their_exact_values_and_match_the_sql_form(worker, tmp_path,
                                                                                     kafka_bootstrap):
    experiment, gateway = start_experiment(worker, tmp_path, CUSTOM_RULES)
    t = dt.datetime.now(dt.timezone.utc)
    legs = []
    # 200 GETs, 30 of them gateway timeouts: the ratio is 30/200 = 0.15 > 0.1
    legs += [leg(gateway, t, status=504 if i < 30 else 200) for i in range(200)]
    # 100 POSTs: 50 timeouts (not GETs: outside the ratio), 8 of them failed slowly (> 1000 ms)
    legs += [leg(gateway, t, method="POST", status=504 if i < 50 else 201, latency=1500.0 if i < 8 else 900.0)
             for i in range(100)]
    random.Random(3).shuffle(legs)
    send(kafka_bootstrap, worker.settings.topic_requests, legs)

    fired = ("SELECT count() FROM hub.alerts WHERE kind = 'alert' AND status = 'firing' "
             f"AND experiment_id = '{experiment}'")
    assert worker.wait_for(fired, 2, timeout=60) == 2
    time.sleep(1.5)
    rows = {r[0]: r for r in alerts(worker, experiment)}
    assert set(rows) == {"gateway-timeouts", "slow-failed-writes"}  # the rule on an idle route stays quiet

    _, status, observed, samples, examples, top, message = rows["gateway-timeouts"]
    assert status == "firing" and observed == pytest.approx(0.15) and samples == 200
    assert len(examples) >= 1 and "ratio 0.15" in message
    assert json.loads(top)[0] == {"route": "/checkout", "value": 0.15, "matching": 30, "samples": 200}

    _, status, observed, samples, examples, _, _ = rows["slow-failed-writes"]
    assert status == "firing" and observed == 8 and samples == 300 and len(examples) >= 1

    # The dashboards' and Grafana alert rules' SQL form of the same filters counts the same rows.
    timeouts, gets = RecordMatch(status=[504]), RecordMatch(method=["GET"])
    slow = RecordMatch(method=["POST"], failed=True, latency_ms_over=1000)
    [[ratio, count]] = worker.sql(
        f"SELECT countIf({match_sql(timeouts)} AND {match_sql(gets)}) / countIf({match_sql(gets)}), "
        f"countIf({match_sql(slow)}) FROM hub.requests WHERE experiment_id = '{experiment}'")
    assert (ratio, count) == (pytest.approx(0.15), 8)
    example = examples[0]
    [[matching]] = worker.sql(f"SELECT count() FROM hub.requests WHERE correlation_id = '{example}' "
                              f"AND {match_sql(slow)}")
    assert matching == 1  # the example ids are of rows the rule counted


def noisy_second(gateway, second, rate, shift=0.0, n=100):
    """n legs per group in one second, interleaved; both groups fail alike at ``rate`` (the noise),
    the canary ``shift`` more."""
    out = []
    for i in range(n):
        at = second + dt.timedelta(seconds=i / n)
        out.append(leg(gateway, at, backend="checkout-v1", status=503 if i < rate * n else 200))
        out.append(leg(gateway, at, backend="checkout-v2", status=503 if i < (rate + shift) * n else 200))
    return out


def test_a_noisy_healthy_experiment_is_not_aborted_by_the_control_rule_while_a_fixed_threshold_fires(
        worker, tmp_path, kafka_bootstrap):
    experiment, gateway = start_experiment(worker, tmp_path, STATISTICAL_RULES)
    # the next whole second: every leg falls after the experiment's start (the start of the
    # current second can precede it, and legs before the start belong to no experiment)
    start = (dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=1)).replace(microsecond=0)
    # A flaky shared dependency: the error rate swings between 5% and 35% for everyone.
    rates = [0.05, 0.35, 0.30, 0.05, 0.10, 0.35, 0.05, 0.30]
    legs = [x for s, rate in enumerate(rates) for x in noisy_second(gateway, start + dt.timedelta(seconds=s), rate)]
    send(kafka_bootstrap, worker.settings.topic_requests, legs)
    assert worker.wait_for(f"SELECT count() FROM hub.requests WHERE experiment_id = '{experiment}'",
                           len(legs), timeout=60) == len(legs)
    fixed = ("SELECT count() FROM hub.alerts WHERE kind = 'alert' AND status = 'firing' "
             f"AND experiment_id = '{experiment}' AND rule = 'fixed-threshold'")
    assert worker.wait_for(fixed, 1, timeout=30) >= 1  # a fixed threshold cries wolf on this data
    time.sleep(2)
    assert [r for r in alerts(worker, experiment) if r[0] == "canary-vs-control"] == []
    rules = {r["rule"]: r for r in worker.stack.api(f"/v1/experiments/{experiment}/rules")}
    assert "not significant" in rules["canary-vs-control"]["detail"]
    assert json.loads(hub(worker.env, "experiment", "show", experiment, "--json"))["status"] == "running"

    # A real regression of the canary, under the same noise: caught and aborted.
    later = start + dt.timedelta(seconds=len(rates))
    shifted = [x for s, rate in enumerate(rates[:4])
               for x in noisy_second(gateway, later + dt.timedelta(seconds=s), rate, shift=0.25)]
    send(kafka_bootstrap, worker.settings.topic_requests, shifted)
    caught = ("SELECT count() FROM hub.alerts WHERE kind = 'alert' AND status = 'firing' "
              f"AND experiment_id = '{experiment}' AND rule = 'canary-vs-control'")
    assert worker.wait_for(caught, 1, timeout=60) == 1
    [row] = [r for r in alerts(worker, experiment) if r[0] == "canary-vs-control"]
    assert row[2] > 0.05 and "(significant at 99.9%)" in row[6]
    deadline = time.time() + 30
    status = None
    while time.time() < deadline and status != "aborted":
        status = json.loads(hub(worker.env, "experiment", "show", experiment, "--json"))["status"]
        time.sleep(0.5)
    assert status == "aborted"


def test_the_python_and_sql_forms_of_a_filter_count_the_same_rows(store):
    """Random filters over random legs: the sink's predicate and the dashboards' SQL agree."""
    from hub.abort.match import predicate
    from hub.records.request_leg import REQUEST_COLUMNS

    rnd = random.Random(11)
    t = dt.datetime(2026, 11, 30, 12, 0, tzinfo=dt.timezone.utc)
    rows = []
    for i in range(2000):
        rows.append((uuid.uuid4(), t, "exp-sql", "", f"c{i}", rnd.choice(["primary", "shadow", "canary"]),
                     rnd.choice(["gw-a", "gw-b"]), rnd.choice(["/a", "/b/{id}"]), rnd.choice(["GET", "POST", "PUT"]),
                     rnd.choice(["v1", "v2"]), rnd.choice([0, 200, 201, 404, 500, 503, 504]),
                     rnd.choice([1.0, 999.9, 1000.0, 1000.1, 2500.0]), 0, 0, "",
                     rnd.choice(["", "", "", "reset by peer"]), "/test"))
    store.insert(f"{store.database}.requests", rows, REQUEST_COLUMNS)
    options = {"status": [[504], ["5xx"], [0, "4xx"], [201, 503]], "method": [["GET"], ["POST", "PUT"]],
               "leg": ["primary", "canary"], "route": ["/a", "/b/{id}"], "gateway": ["gw-a"], "backend": ["v2"],
               "failed": [True, False], "latency_ms_over": [0, 1000, 999.95]}
    for _ in range(60):
        chosen = {k: rnd.choice(v) for k, v in options.items() if rnd.random() < 0.35}
        match = RecordMatch(**chosen)
        expected = sum(1 for r in rows if predicate(match)(r))
        counted = store.scalar(f"SELECT countIf({match_sql(match)}) FROM {store.database}.requests "
                               "WHERE experiment_id = 'exp-sql'")
        assert counted == expected, chosen
