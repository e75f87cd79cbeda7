"""Patient data joined to other words: names next to who saw them or where they lie, dates of birth and
street addresses joined by hyphens into ids and names, the city after an address; metric names that
keep their structure when a part is replaced; infrastructure names kept."""

from __future__ import annotations

import pytest

from hub.redaction import default_policy, redact_text

P = default_policy()
E = P.engine(b"k" * 32)


@pytest.mark.parametrize("text, gone", [
    ("seen by Ottoline Marsh in bed 4", ("Ottoline", "Marsh")),
    ("Ottoline Marsh in bed 4", ("Ottoline", "Marsh")),
    ("paged by Ottoline Marsh", ("Ottoline", "Marsh")),
    # any blank between the verb and "by", as the pattern allows (not only one space)
    ("gateway paged  by Zed Quillworth", ("Zed", "Quillworth")),
    ("paged\tby Zed Quillworth", ("Zed", "Quillworth")),
    ("assessed\nby Zed Quillworth", ("Zed", "Quillworth")),
    ("consulted   by Zed Quillworth", ("Zed", "Quillworth")),
    ("visited\t by Zed Quillworth", ("Zed", "Quillworth")),
    ("moved Ottoline Marsh to ward 7B", ("Ottoline", "Marsh")),
    ("DOB-03-14-1962", ("03-14-1962",)),
    ("edge-gw-DOB-03-14-1962", ("03-14-1962",)),
    ("lookup failed for DOB-03-14-1962 on edge-gw-2", ("03-14-1962",)),
    ("dob_14_03_1962", ("14_03_1962",)),
    ("42 Wallaby Way, Sydney", ("Wallaby", "Sydney")),
    ("lives at 1600 Larkspur Lane Apt 3, Sydney NSW 2000", ("Larkspur", "Sydney", "2000")),
    ("moved to 12 Oak St, Springfield, IL 62704 last week", ("Oak", "Springfield", "62704")),
])
def test_free_text(text, gone):
    out = redact_text(P, text)
    assert not [g for g in gone if g in out], out


@pytest.mark.parametrize("shape", ["id", "word", "endpoint", "metric_name"])
@pytest.mark.parametrize("value", ["edge-gw-DOB-03-14-1962", "DOB-03-14-1962", "edge-gw-03-14-1962",
                                   "edge-gw-14.03.1962", "edge-gw-1600-Larkspur-Lane-Apt-3", "gw_12_Oak_St"])
def test_structural_values_holding_a_date_of_birth_or_an_address_are_replaced(shape, value):
    out = E.struct(shape, value, [])
    assert out.startswith("[REDACTED:") or (shape == "metric_name" and "[REDACTED:id:" in out), out
    assert not [s for s in ("1962", "Larkspur", "Oak") if s in out], out


@pytest.mark.parametrize("shape", ["id", "word", "endpoint", "metric_name"])
@pytest.mark.parametrize("value", ["edge-gw-2", "db-shard-12345678", "patients-db-replica-b",
                                   # an ISO release date is a release, not a date of birth (year 2020 on)
                                   "release-2024-03-14", "edge-gw-12-2", "node-3-1-2", "pool-12"])
def test_infrastructure_names_are_kept(shape, value):
    assert E.struct(shape, value, []) == value


@pytest.mark.parametrize("text", ["paged by on-call after the failover", "seen by the load balancer in 3 ms",
                                  "Primary Database in room 2 of the datacenter", "release-2024-03-14 deployed",
                                  "paged by PagerDuty at 3am", "seen by Kafka Broker"])
def test_operations_text_is_kept(text):
    assert redact_text(P, text) == text


def test_metric_names_keep_their_structure_and_stay_distinct():
    names = ["calls.617-555-0143", "calls.617-555-0144", "member.XQZ448812903.count", "member.XQZ448812904.count",
             "mail.ottoline.marsh@example.org.sent", "mail.zeb.q@example.org.sent",
             "patients.Zebulon-Quillfeather.count", "patients.zebulon.quillfeather.count",
             "db.pool{patient=Ada,mrn=004417829}.active", "db.pool{patient=Bob,mrn=004417830}.active"]
    out = [E.struct("metric_name", n, []) for n in names]
    assert len(set(out)) == len(names), out  # distinct series stay distinct
    for seed in ("617-555", "XQZ44", "ottoline", "marsh", "zeb.q", "Zebulon", "zebulon", "uillfeather", "Ada",
                 "004417829", "Bob"):
        assert not [o for o in out if seed in o], (seed, out)
    assert out[0].startswith("calls.[REDACTED:id:") and out[2].startswith("member.[REDACTED:id:")
    assert out[2].endswith("].count") and out[4].startswith("mail.[REDACTED:id:") and out[4].endswith("].sent")
    assert out[6].startswith("patients.[REDACTED:id:") and out[6].endswith("].count")
    assert out[8].startswith("db.pool[REDACTED:id:") and out[8].endswith("].active")
    # the same name, the same series
    assert E.struct("metric_name", names[0], []) == out[0]
    for kept in ("http.server.requests", "jvm.memory.heap.used", "db.pool.active"):
        assert E.struct("metric_name", kept, []) == kept


@pytest.mark.parametrize("source", ["/gateways/edge-gw/requests", "/gateways/edge-gw/edge-gw-2",
                                    "/gateways/edge-gw/patient-api", "/gateways/edge-gw/legs"])
def test_request_source_slugs_are_kept(source):
    assert E.struct("url", source, []) == source
