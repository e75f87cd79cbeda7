"""Redaction happens in the worker, before storage: patient data sent through Kafka and HTTP is not in the store."""

from __future__ import annotations

import datetime as dt
import json
import urllib.request
import uuid

import pytest

from hub.producer import send_records
from hub.records.generate import encode_event
from hub.records.request_leg import RequestLeg, new_event
from hub.testing import WorkerProcess

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse, pytest.mark.slow]

SEEDS = ["123-45-6789", "jane.doe@example.org", "MRN 40912345", "Johnathan Quincey", "4091234512"]


def leg(route: str, error: str, backend: str = "patients-v1"):
    cid = uuid.uuid4().hex
    data = RequestLeg(correlation_id=cid, leg="primary", gateway="edge", route=route, method="GET", backend=backend,
                      status=500, latency_ms=3.0, event_time=dt.datetime.now(dt.timezone.utc), error=error)
    return cid.encode(), encode_event(new_event(data, source="/edge?user=jane.doe@example.org"))


def test_patient_data_in_routes_errors_and_dead_letters_never_reaches_the_store(tmp_path, kafka_bootstrap):
    records = [
        leg("/patients/4091234512/records", "lookup failed for patient Johnathan Quincey, MRN 40912345"),
        leg("/search", "timeout contacting jane.doe@example.org"),
    ]
    # A query string in a route is refused by the schema: the record is dead-lettered, redacted.
    records.append(leg("/patients/77?ssn=123-45-6789", "for Mr. Johnathan Quincey"))
    bad = json.dumps({"specversion": "1.0", "note": "SSN 123-45-6789 for patient Johnathan Quincey"}).encode()
    with WorkerProcess.start(tmp_path / "home", kafka_bootstrap) as worker:
        send_records(kafka_bootstrap, worker.settings.topic_requests, records + [(b"x", bad)])
        assert worker.wait_for("SELECT count() FROM hub.requests", 2, timeout=60) == 2
        assert worker.wait_for("SELECT count() FROM hub.dead_letters", 2, timeout=60) == 2
        routes = sorted(r[0] for r in worker.sql("SELECT route FROM hub.requests"))
        assert routes == ["/patients/{id}/records", "/search"]
        everything = worker.sql(
            "SELECT arrayStringConcat([toString(route), error, source], ' ') FROM hub.requests "
            "UNION ALL SELECT arrayStringConcat([reason, base64Decode(value)], ' ') FROM hub.dead_letters")
        text = " ".join(r[0] for r in everything)
        for seed in SEEDS:
            assert seed.lower() not in text.lower(), seed
        assert "[REDACTED:" in text
        status = json.loads(urllib.request.urlopen(worker.settings.http_url + "/v1/status").read())
        assert sum(status["redacted"].values()) >= 5
